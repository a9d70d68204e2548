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
    """One number of a fault's model: its field name, its unit, its control's label, and
    whether the model needs it (off, it switches the fault off)."""

    name: str
    kind: Kind
    label: str
    required: bool = False


AFTER_BYTES = Part("after_bytes", "bytes", "bytes")
AFTER_S = Part("after_s", "seconds", "after")
TOXICITY = Part("toxicity", "share", "toxicity")
#: after N bytes or T seconds, for a share of the connections (Blackhole's and Reset's shape).
TRIGGERED = (AFTER_BYTES, AFTER_S, TOXICITY)
#: The parts of the faults on other branches (limit_data; slow_close and stall), ready.
LIMIT_BYTES = Part("after_bytes", "bytes", "bytes", required=True)
HOLD = Part("delay_ms", "ms", "hold", required=True)
WITHIN_BYTES = Part("within_bytes", "bytes", "in bytes")
WITHIN_S = Part("within_s", "seconds", "in time")


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

#: Every connection fault the TUI sets, in the order its controls show. A fault model of a
#: shape above is one row more, e.g. `Fault("reset", "Reset", TRIGGERED, TRIGGERED_ON),`.
FAULTS: tuple[Fault, ...] = (
    Fault("blackhole", "Blackhole", TRIGGERED, TRIGGERED_ON),
    Fault("reset", "Reset", TRIGGERED, TRIGGERED_ON),
    Fault("limit_data", "Limit data", (LIMIT_BYTES, TOXICITY), {"after_bytes": 1_000_000}),
    Fault("slow_close", "Slow close", (HOLD, TOXICITY), {"delay_ms": 500.0}),
    Fault(
        "stall",
        "Stall",
        (HOLD, WITHIN_BYTES, WITHIN_S, TOXICITY),
        {"delay_ms": 500.0, "within_s": 10.0},
    ),
)


def part_field(fault: Fault, part: Part) -> str:
    """The control's field name of one part: `blackhole_after_s`."""
    return f"{fault.name}_{part.name}"


def fields_of(faults: tuple[Fault, ...]) -> dict[str, tuple[Fault, Part | None]]:
    """Each control's field for `faults`: a fault's switch, or a part of it."""
    return {
        field: (fault, part)
        for fault in faults
        for field, part in ((fault.name, None), *((part_field(fault, p), p) for p in fault.parts))
    }


FAULT_FIELDS = fields_of(FAULTS)
#: A spec path under a direction (`blackhole.after_s`) and the control that sets it.
CONTROL_OF: dict[str, str] = {
    f"{fault.name}.{part.name}": part_field(fault, part) for fault in FAULTS for part in fault.parts
}


def _model(link: LinkSpec, fault: Fault) -> dict[str, Any] | None:
    value = getattr(link, fault.name)
    return None if value is None else dict(value.model_dump(mode="json"))


def fault_value(link: LinkSpec, field: str) -> float | str:
    """What the control of `field` shows (see `part_value`)."""
    fault, part = FAULT_FIELDS[field]
    return part_value(_model(link, fault), part)


def part_value(model: dict[str, Any] | None, part: Part | None) -> float | str:
    """What a control shows of a fault's `model` (None: off): `on`/`off` for its switch
    (`part` None); for a part, its value (seconds shown in ms), or OFF when it or its fault
    is not set."""
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
    """The patch for a fault control under `at` (`ingress.`), see `fault_patch`."""
    fault, part = FAULT_FIELDS[field]
    return fault_patch(at + fault.name, fault, part, value, _model(link, fault))


def fault_patch(
    whole: str, fault: Fault, part: Part | None, value: float | str, model: dict[str, Any] | None
) -> dict[str, Any]:
    """The patch at path `whole` (`ingress.blackhole`) that sets a fault's control, given the
    fault's `model` in force (None: off). The switch on sets the fault's `on`, off removes
    it. A part set while the fault is off switches it on with that part and the parts the
    model needs (a share, with `on` whole). A part set to OFF unsets it; the fault goes with
    a part it needs, its share, or its last trigger."""
    if part is None:
        if value == "off":
            return {whole: None}
        return {whole: dict(fault.on) if model is None else model}
    number = float(value)
    needed = {p.name for p in fault.parts if p.required}
    if number < 0:
        if model is None or part.kind == "share" or part.required:
            return {whole: None}
        left = [p for p in fault.parts if p.kind != "share" and p != part
                and model.get(p.name) is not None]  # fmt: skip
        return {f"{whole}.{part.name}": None} if left else {whole: None}
    if model is None:
        base = {k: v for k, v in fault.on.items() if part.kind == "share" or k in needed}
        return {whole: {**base, part.name: _typed(part, number)}}
    return {f"{whole}.{part.name}": _typed(part, number)}
