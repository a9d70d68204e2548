"""Changing a spec by dotted field paths (`egress.latency`, `flows.web.ingress.rate`): what
`linkshaper set`, the TUI and the HTTP API's PATCH send. The result is validated whole again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.model.spec import MAX_LABEL_LENGTH, Spec, SpecError, parse_spec
from engine.model.validation_errors import field_name, quoted


def _resolve_path(data: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The dict holding the field named by a dotted path, and the field's key."""
    parts = path.split(".")
    shown = field_name(path)  # quoted in refusals: cut, escapes neutralised
    if not all(parts):
        raise SpecError(f"{shown}: not a field path")
    if parts[0] in ("ingress", "egress"):
        parts = ["default_link", *parts]
    if parts[0] == "flows":
        if len(parts) < 3:
            raise SpecError(f"{shown}: name a flow field, e.g. flows.LABEL.egress.rate")
        label = parts[1]
        if len(label) > MAX_LABEL_LENGTH:  # no flow has it; and not echoed whole, twice
            raise SpecError(
                f"flows.{field_name(label[:20])}…: a label is at most {MAX_LABEL_LENGTH} characters"
            )
        flows = [f for f in data.get("flows", []) if f.get("label") == label]
        if not flows:
            raise SpecError(f"{shown}: no flow labelled {quoted(label)}")
        rest = parts[2:]
        if rest[0] in ("ingress", "egress"):
            rest = ["link", *rest]
        node: dict[str, Any] = flows[0]
        parts = rest
    else:
        node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            raise SpecError(f"{shown}: {field_name(part)} is not an object")
        node = child
    return node, parts[-1]


def patch_spec(spec: Spec, changes: Mapping[str, Any]) -> Spec:
    """A new spec with fields set by dotted paths (`egress.latency`, `flows.web.ingress.rate`).

    Values may carry units (`"50ms"`, `"10mbit"`, `"1%"`); the whole spec is validated again,
    strictly as a spec file is (`true` is no rate), so a bad value is reported exactly as in a
    spec file and nothing is half-applied.
    """
    if spec.flows and _default_link_only(changes):
        # Flows are validated independently of the default link: re-reading 10,000 of them
        # for a one-field change took seconds. Same outcome and same words as the whole path.
        changed = patch_spec(Spec(default_link=spec.default_link), changes)
        return spec.model_copy(update={"default_link": changed.default_link})
    data = spec.model_dump(mode="json")
    for path, value in changes.items():
        if not isinstance(path, str):
            raise SpecError(f"{quoted(path)}: not a field path")
        node, key = _resolve_path(data, path)
        node[key] = value
    return parse_spec(data)


def _default_link_only(changes: Mapping[str, Any]) -> bool:
    """Whether every change names a field of the default link (`egress.latency`)."""
    return all(
        isinstance(path, str) and path.split(".", 1)[0] in ("ingress", "egress", "default_link")
        for path in changes
    )
