"""The one gate every change to the spec passes, whichever door it came in by.

HTTP POST/PATCH and replays, the control socket (the CLI's `set` and `replay`, the TUI),
SIGHUP: each hands the supervisor a SetSpec or PatchSpec, and `admit` turns it into the spec
to put in force, or refuses it with one line naming the field and the reason. Parsing, strict
types, ranges and label rules are the model's (`engine.model.spec`, read strictly for every
door); the trace-file policy follows the change's `origin`, which the HTTP API stamps on all
it sends (`engine.web.network_door`). No door checks anything the gate does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.model.spec import Spec, SpecError, patch_spec
from engine.model.trace import allowed_traces, check_traces
from engine.protocol.messages import PatchSpec, SetSpec

#: Most fields one patch may set: a patch is a few fields typed or dragged; a whole new spec
#: is a SetSpec. It bounds the work one request makes (each field resolves a dotted path).
MAX_PATCH_FIELDS = 1000


def check_patch_size(changes: Mapping[str, Any]) -> None:
    """SpecError if a patch sets more than MAX_PATCH_FIELDS fields (a door may ask early, so
    that such a body is not even sent on; the words are the gate's)."""
    if len(changes) > MAX_PATCH_FIELDS:
        raise SpecError(f"changes: more than {MAX_PATCH_FIELDS} fields in one patch")


def admit(request: SetSpec | PatchSpec, in_force: Spec) -> Spec:
    """The spec `request` makes of `in_force`, checked: SpecError or TraceError (one line,
    naming the field) if it must not be put in force. Reads the trace files it names, so call
    it off any event loop and without the spec lock."""
    if isinstance(request, PatchSpec):
        check_patch_size(request.changes)
        spec = patch_spec(in_force, request.changes)
    else:
        spec = request.spec
    if request.origin == "network":
        # Network clients name only files in the operator's trace directory (or a trace
        # already in force); trusted doors (root's control socket, the spec file) any file.
        spec = allowed_traces(spec, in_force, request.trace_dir)
    check_traces(spec)
    return spec


def reloaded(spec: Spec, in_force: Spec) -> Spec:
    """The spec file's spec (SIGHUP), through the same gate as a trusted client's SetSpec."""
    return admit(SetSpec(spec=spec, source="sighup"), in_force)
