"""The connection faults a link's advanced controls set (engine/model/faults.py), as one table:
a fault is a field of LinkSpec holding a model (or None: off) whose parts are numbers. Each
fault gets an on/off switch (its field's name) and a slider per part (`FAULT_PART`, such as
`blackhole_after_s`). A fault model added to the engine with parts of these kinds is one row
of FAULTS. Plain data in, plain data out (no Textual), tested in tests/unit/test_fault_fields.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from engine.model.spec import LinkSpec

#: What a part slider shows for a part not set (or a fault switched off): below every value.
OFF = -1.0

#: A part's unit: bytes; seconds (shown and typed as a duration, in ms); a share 0..1 (the
#: toxicity); milliseconds.
Kind = Literal["bytes", "seconds", "share", "ms"]


@dataclass(frozen=True)
class Part:
    """One number of a fault's model: its field name, its unit and its control's label."""

    name: str
    kind: Kind
    label: str


AFTER_BYTES = Part("after_bytes", "bytes", "bytes")
AFTER_S = Part("after_s", "seconds", "after")
TOXICITY = Part("toxicity", "share", "toxicity")
#: after N bytes or T seconds, for a share of the connections (Blackhole's shape).
TRIGGERED = (AFTER_BYTES, AFTER_S, TOXICITY)


@dataclass(frozen=True)
class Fault:
    """A connection fault: its LinkSpec field, its switch's label (at most 10 characters),
    its parts, and what switching it on sets (`on`, the model as JSON data)."""

    name: str
    label: str
    parts: tuple[Part, ...]
    on: dict[str, Any]


#: Switched on from the TUI, a triggered fault strikes 10 s into each connection.
TRIGGERED_ON: dict[str, Any] = {"after_s": 10.0}

#: Every connection fault the TUI sets, in the order its controls show. A fault model of the
#: same shape is one row more, e.g. `Fault("reset", "Reset", TRIGGERED, TRIGGERED_ON),`.
FAULTS: tuple[Fault, ...] = (
    Fault("blackhole", "Blackhole", TRIGGERED, TRIGGERED_ON),
)  # fmt: skip


def part_field(fault: Fault, part: Part) -> str:
    """The control's field name of one part: `blackhole_after_s`."""
    return f"{fault.name}_{part.name}"


#: Each control's field: a fault's switch, or a part of it.
FAULT_FIELDS: dict[str, tuple[Fault, Part | None]] = {
    field: (fault, part)
    for fault in FAULTS
    for field, part in ((fault.name, None), *((part_field(fault, p), p) for p in fault.parts))
}
#: A spec path under a direction (`blackhole.after_s`) and the control that sets it.
CONTROL_OF: dict[str, str] = {
    f"{fault.name}.{part.name}": part_field(fault, part) for fault in FAULTS for part in fault.parts
}


def _model(link: LinkSpec, fault: Fault) -> dict[str, Any] | None:
    value = getattr(link, fault.name)
    return None if value is None else dict(value.model_dump(mode="json"))


def fault_value(link: LinkSpec, field: str) -> float | str:
    """What the control of `field` shows: `on`/`off` for a switch; for a part, its value
    (seconds shown in ms), or OFF when it or its fault is not set."""
    fault, part = FAULT_FIELDS[field]
    model = _model(link, fault)
    if part is None:
        return "off" if model is None else "on"
    value = None if model is None else model.get(part.name)
    if value is None:
        return OFF
    return float(value) * 1000 if part.kind == "seconds" else float(value)


def _typed(part: Part, value: float) -> float | int:
    """A control's value in the model's unit."""
    if part.kind == "seconds":
        return value / 1000
    return int(value) if part.kind == "bytes" else value


def fault_changes(at: str, field: str, value: float | str, link: LinkSpec) -> dict[str, Any]:
    """The patch for a fault control under `at` (`ingress.`): the switch on sets the fault's
    `on`, off removes it; a part set while the fault is off switches it on with that part;
    a part set to OFF unsets it, and the fault goes when no trigger is left (a share part at
    OFF, the toxicity, switches the fault off)."""
    fault, part = FAULT_FIELDS[field]
    model = _model(link, fault)
    whole = at + fault.name
    if part is None:
        if value == "off":
            return {whole: None}
        return {whole: dict(fault.on) if model is None else model}
    number = float(value)
    if number < 0:
        if model is None or part.kind == "share":
            return {whole: None}
        left = [p for p in fault.parts
                if p.kind != "share" and p != part and model.get(p.name) is not None]  # fmt: skip
        return {f"{whole}.{part.name}": None} if left else {whole: None}
    if model is None:  # a trigger alone; a share with the trigger the switch sets
        base = dict(fault.on) if part.kind == "share" else {}
        return {whole: {**base, part.name: _typed(part, number)}}
    return {f"{whole}.{part.name}": _typed(part, number)}
