"""A refusal of the engine's, said as the TUI names things: `Download Latency: must be at
most 3600 s (got 5000 s)` for the engine's `default_link.ingress.latency: ...`. The engine's
gate words the reason for every door (engine/model/validation_errors.py, fields.py); only the
field's name is the TUI's, the name of the control that sets it. Every refusal the TUI shows
(a typed value, a step, a choice, a preset, a replay's step) passes through `plain_refusal`."""

from __future__ import annotations

import re

from engine.model.spec import Direction
from shaper_tui.fault_fields import CONTROL_OF, FAULTS
from shaper_tui.session import SHORT_NAMES
from shaper_tui.widgets.direction_panel import NAMES

#: A field of the default link as the engine names it in a refusal (`default_link.` is
#: left out by some doors: `ingress.rate`).
_FIELD = re.compile(r"(?<![\w.])(?:default_link\.)?(ingress|egress)\.([a-z_]+(?:\.[a-z_0-9]+)*): ")

#: Spec fields (under a direction) whose control has another name; a field under one of
#: these (`burst_loss.p_enter`, `slot.min_delay`) is its control's too.
_CONTROL_OF = {
    "burst_loss": "loss", "queue.packets": "queue", "queue.discipline": "discipline",
    "queue.ecn": "ecn", "outage.period": "outage_every", "outage.mean_up": "outage_every",
    "outage.down": "outage_for", "outage.mean_down": "outage_for", **CONTROL_OF,
}  # fmt: skip
#: Fields set as a whole by one control: a refusal of any field under one is that control's.
_WHOLE = ("burst_loss", "slot", "outage", *(fault.name for fault in FAULTS))
_LABELS = NAMES


def control_name(direction: Direction, path: str) -> str:
    """`Download Latency` for (`ingress`, `latency`); a field no control sets keeps its path
    (`Upload queue.bytes`)."""
    parts = path.split(".")
    for length in range(len(parts), 0, -1):
        head = ".".join(parts[:length])
        field = _CONTROL_OF.get(head, head)
        if length < len(parts) and head not in _WHOLE:
            continue  # `queue.bytes` is no setting of the Queue control (its packets)
        if field in _LABELS:
            return f"{SHORT_NAMES[direction]} {_LABELS[field]}"
    return f"{SHORT_NAMES[direction]} {path}"


def plain_refusal(message: str) -> str:
    """The engine's refusal with each field of the default link named as its control."""

    def named(match: re.Match[str]) -> str:
        direction: Direction = "ingress" if match[1] == "ingress" else "egress"
        return f"{control_name(direction, match[2])}: "

    return _FIELD.sub(named, message)
