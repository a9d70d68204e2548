"""Which fields of the spec an undo step changed, and the patch that takes back only those:
a change another client made meanwhile (CLI, HTTP, a script) is left as it is. Plain Python
(no Textual), tested in tests/unit/test_session.py."""

from __future__ import annotations

from typing import Any

from engine.model.spec import Spec, parse_spec

#: A field path (`default_link.egress.latency`) and its value before and after a change.
FieldChanges = dict[str, tuple[Any, Any]]

#: How a link's fields are named on screen (the rest: their name, capitalised).
_LABELS = {"burst_loss": "Loss", "queue": "Queue", "slot": "Slot", "outage": "Outage"}
_DIRECTION_NAMES = {"ingress": "Download", "egress": "Upload"}


def field_changes(before: Spec, after: Spec) -> FieldChanges:
    """The fields `after` sets otherwise than `before`, each with both values. A part set on
    one side only (a burst loss switched on) is one field, whole; the flows are one field."""
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    changes: FieldChanges = {}
    if old["flows"] != new["flows"]:
        changes["flows"] = (old["flows"], new["flows"])
    _diff(old["default_link"], new["default_link"], "default_link", changes)
    return changes


def _diff(old: Any, new: Any, at: str, changes: FieldChanges) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() | new.keys():
            _diff(old.get(key), new.get(key), f"{at}.{key}", changes)
    elif old != new:
        changes[at] = (old, new)


def value_at(spec: Spec, path: str) -> Any:
    """The value of a field path in `spec` (None where a part is not set)."""
    node: Any = spec.model_dump(mode="json")
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def with_values(spec: Spec, values: dict[str, Any]) -> Spec:
    """`spec` with the given field paths set (validated whole: SpecError if it is no spec)."""
    data = spec.model_dump(mode="json")
    for path, value in values.items():
        *parents, key = path.split(".")
        node = data
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[key] = value
    return parse_spec(data)


def field_name(path: str) -> str:
    """A field path as the screen names it: `default_link.egress.latency` is Upload Latency."""
    parts = path.split(".")
    if parts[0] != "default_link" or len(parts) < 3:
        return "the flows" if parts[0] == "flows" else path
    field = parts[2]
    label = _LABELS.get(field, field.replace("_", " ").capitalize())
    return f"{_DIRECTION_NAMES.get(parts[1], parts[1])} {label}"


def take_back(
    changes: FieldChanges, current: Spec, forward: bool
) -> tuple[dict[str, Any], list[str]]:
    """The values that undo (`forward` False) or redo a change whose fields are `changes`,
    for the fields still as the change left them in `current`, and the fields that are not
    (changed since by someone else: left alone)."""
    values: dict[str, Any] = {}
    moved: list[str] = []
    for path, (old, new) in changes.items():
        left, wanted = (old, new) if forward else (new, old)
        if value_at(current, path) == left:
            values[path] = wanted
        else:
            moved.append(path)
    return values, moved
