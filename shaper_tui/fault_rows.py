"""The advanced controls of the connection faults (fault_fields.FAULTS): for each fault its
switch, then a slider per part, labelled under it (` after`) and named in full elsewhere
(`Blackhole after`: undo, refusals, prompts)."""

from __future__ import annotations

from shaper_tui.fault_fields import FAULTS, Kind, part_field
from shaper_tui.link_edits import SWITCH, Field
from shaper_tui.scales import FAULT_AFTER, FAULT_BYTES, FAULT_HOLD, FAULT_SHARE, Scale

SCALES: dict[Kind, Scale] = {
    "bytes": FAULT_BYTES, "seconds": FAULT_AFTER, "share": FAULT_SHARE, "ms": FAULT_HOLD,
}  # fmt: skip

FAULT_SLIDERS: tuple[tuple[Field, str, Scale], ...] = tuple(
    (part_field(fault, part), f" {part.label}", SCALES[part.kind])
    for fault in FAULTS
    for part in fault.parts
)
FAULT_CHOICES: tuple[tuple[Field, str, tuple[str, ...]], ...] = tuple(
    (fault.name, fault.label, SWITCH) for fault in FAULTS
)
#: Top to bottom: each fault's switch, then its parts.
FAULT_ORDER: tuple[Field, ...] = tuple(
    field
    for fault in FAULTS
    for field in (fault.name, *(part_field(fault, part) for part in fault.parts))
)
#: Each part's control as undo, refusals and prompts name it: `Blackhole after`.
FAULT_NAMES: dict[Field, str] = {
    part_field(fault, part): f"{fault.label} {part.label}"
    for fault in FAULTS
    for part in fault.parts
}
