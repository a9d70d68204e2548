"""The one gate every change to the spec passes, whichever door it came in by.

HTTP POST/PATCH and replays, the control socket (the CLI's `set` and `replay`, the TUI),
SIGHUP: each hands the supervisor a SetSpec or PatchSpec, and `admit` turns it into the spec
to put in force, or refuses it with one line naming the field and the reason. Parsing, strict
types, ranges and label rules are the model's (`engine.model.spec`, read strictly for every
door); the trace-file policy follows the change's `origin`, which the HTTP API stamps on all
it sends (`engine.web.network_door`). No door checks anything the gate does not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.files.trace_files import allowed_traces, read_trace, read_traces
from engine.model.spec import Spec, SpecError
from engine.model.spec_patch import patch_spec
from engine.model.trace import TraceError, TraceFile, trace_fields
from engine.protocol.messages import PatchSpec, SetSpec

#: Most fields one patch may set: a patch is a few fields typed or dragged; a whole new spec
#: is a SetSpec. It bounds the work one request makes (each field resolves a dotted path).
MAX_PATCH_FIELDS = 1000


def check_patch_size(changes: Mapping[str, Any]) -> None:
    """SpecError if a patch sets more than MAX_PATCH_FIELDS fields (a door may ask early, so
    that such a body is not even sent on; the words are the gate's)."""
    if len(changes) > MAX_PATCH_FIELDS:
        raise SpecError(f"changes: more than {MAX_PATCH_FIELDS} fields in one patch")


@dataclass(frozen=True)
class Admitted:
    """A spec the gate let through, with the file each trace it names was read from: what
    the supervisor puts in force and hands to the workers, who read those files or none."""

    spec: Spec
    trace_files: Mapping[str, TraceFile] = field(default_factory=dict)


def admitted_at_start(spec: Spec) -> Admitted:
    """The spec an engine starts with (its spec file, trusted), its traces as they are now; one
    that cannot be read is left out, as the workers leave it (the file was checked at start)."""
    files: dict[str, TraceFile] = {}
    for _where, path in trace_fields(spec):
        with contextlib.suppress(TraceError):
            files[path] = read_trace(path)[1]
    return Admitted(spec, files)


def named_traces(key: str, value: Any) -> Iterator[str]:
    """Every trace path a patch's `key: value` sets (a `.trace` field, or a `trace` inside
    a link or flow set whole)."""
    if key == "trace" or key.endswith(".trace"):
        if isinstance(value, str):
            yield value
    elif isinstance(value, Mapping):
        for inner_key, inner in value.items():
            yield from named_traces(str(inner_key), inner)
    elif isinstance(value, list):
        for item in value:
            yield from named_traces("", item)


def _renamed_traces(request: SetSpec | PatchSpec, spec: Spec) -> set[str]:
    """The trace paths a trusted request names, read again (links followed, as the operator
    asks: `/traces/current -> x.up` and SIGHUP takes the new target); a patch names only the
    fields it sets, so a change of a rate never reads a trace file."""
    if isinstance(request, SetSpec):
        return {path for _where, path in trace_fields(spec)}
    return {path for key, value in request.changes.items() for path in named_traces(key, value)}


def admit(request: SetSpec | PatchSpec, in_force: Admitted) -> Admitted:
    """The spec `request` makes of `in_force`, checked: SpecError or TraceError (one line,
    naming the field) if it must not be put in force. Reads the trace files it names anew,
    so call it off any event loop and without the spec lock.

    Traces already in force are not read again unless a trusted door names them: what was
    read when they were admitted stays in force, so a file changed or replaced on disk since
    (a link swapped in a shared trace directory) is neither read nor in the way of a change
    to another field. A network client names new traces only in the trace directory; they
    are stored by their resolved path and read without following any link."""
    if isinstance(request, PatchSpec):
        check_patch_size(request.changes)
        spec = patch_spec(in_force.spec, request.changes)
    else:
        spec = request.spec
    if request.origin == "network":
        # Network clients name only files in the operator's trace directory (or a trace
        # already in force); trusted doors (root's control socket, the spec file) any file.
        spec = allowed_traces(spec, in_force.spec, request.trace_dir)
        files = read_traces(spec, in_force.trace_files, set(), follow_links=False)
    else:
        fresh = _renamed_traces(request, spec)
        files = read_traces(spec, in_force.trace_files, fresh, follow_links=True)
    return Admitted(spec, files)


def reloaded(spec: Spec, in_force: Admitted) -> Admitted:
    """The spec file's spec (SIGHUP), through the same gate as a trusted client's SetSpec."""
    return admit(SetSpec(spec=spec, source="sighup"), in_force)
