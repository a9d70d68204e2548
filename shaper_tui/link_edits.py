"""What a control shows for a link, and the spec patch that a control's new value makes.

Kept apart from the widgets so that the mapping is plain data in, plain data out, and tested
without a screen.
"""

from __future__ import annotations

from typing import Any

from engine.model.spec import UNLIMITED_RATE, Direction, LinkSpec
from shaper_tui.fault_fields import FAULT_FIELDS, fault_changes, fault_value

#: A control's field: "rate", "loss", "loss_model", "latency", "jitter", "jitter_strength",
#: "jitter_distribution", "queue", "discipline", "ecn", "duplicate", "corrupt", "reorder",
#: "slot", "outage", "outage_every", "outage_for", "seed", or a connection fault's (its
#: switch and parts, from the table in fault_fields.py).
Field = str

LOSS_MODELS = ("random", "bursty")
JITTER_DISTRIBUTIONS = ("uniform", "normal", "pareto")
DISCIPLINES = ("tail_drop", "head_drop", "codel", "fq_codel", "pie")
SWITCH = ("off", "on")
OUTAGE_MODES = ("off", "blocked", "hold")
#: What an outage switched on from the TUI starts as: half a second down every five.
OUTAGE_EVERY_MS = 5000.0
OUTAGE_FOR_MS = 500.0
#: The seed a link gets when its Seed is switched on here (the spec or `linkshaper set` may
#: give any other; the TUI keeps it while it stays on).
TUI_SEED = 1
#: A queue's settings that belong to one discipline (cleared when it changes).
_AQM_SETTINGS = ("target", "interval", "flows", "quantum", "tupdate", "max_burst")

#: Bursty loss keeps the Gilbert-Elliott chain's exit probability fixed, so bursts last
#: 1/p_exit = 4 packets on average, and sets the entry probability for the chosen mean loss.
BURST_EXIT = 0.25
BURSTY_MAX_LOSS = 0.99


def loss_model(link: LinkSpec) -> str:
    return "bursty" if link.burst_loss is not None else "random"


def mean_loss(link: LinkSpec) -> float:
    """The loss a user set: random loss, plus the burst model's long-run mean."""
    burst = link.burst_loss.mean_loss if link.burst_loss is not None else 0.0
    return round(min(1.0, link.loss + burst), 12)


def shown_value(link: LinkSpec, field: Field) -> float | str:
    """The value a control shows for `field` of `link`."""
    if field == "rate":
        return float(min(link.rate, UNLIMITED_RATE))
    if field == "loss":
        return mean_loss(link)
    if field == "loss_model":
        return loss_model(link)
    if field == "queue":
        return float(link.queue.packets or 0)
    if field == "discipline":
        return link.queue.discipline
    if field == "ecn":
        return "on" if link.queue.ecn else "off"
    if field == "seed":
        return "off" if link.seed is None else "on"
    if field == "slot":
        return 0.0 if link.slot is None else link.slot.min_delay
    if field in ("outage", "outage_every", "outage_for"):
        return _outage_value(link, field)
    if field in FAULT_FIELDS:
        return fault_value(link, field)
    value = getattr(link, field)
    return value if isinstance(value, str) else float(value)


def _outage_value(link: LinkSpec, field: Field) -> float | str:
    outage = link.outage
    if field == "outage":
        return "off" if outage is None else outage.mode
    if outage is None:
        return 0.0
    if outage.period is not None and outage.down is not None:
        return outage.period if field == "outage_every" else outage.down
    assert outage.mean_up is not None and outage.mean_down is not None
    return outage.mean_up + outage.mean_down if field == "outage_every" else outage.mean_down


def _outage_changes(at: str, field: Field, value: float | str, link: LinkSpec) -> dict[str, Any]:
    """An outage's controls: its mode (off removes it), how often it comes and how long it
    lasts (for a random one, the mean cycle and the mean time down)."""
    outage = link.outage
    if field == "outage":
        if value == "off":
            return {at + "outage": None}
        if outage is None:
            return {at + "outage": {"period": OUTAGE_EVERY_MS, "down": OUTAGE_FOR_MS,
                                    "mode": value}}  # fmt: skip
        return {at + "outage.mode": value}
    ms = float(value)
    if outage is None:
        every, down = (ms, min(OUTAGE_FOR_MS, ms / 2)) if field == "outage_every" else (
            max(OUTAGE_EVERY_MS, 2 * ms), ms)  # fmt: skip
        return {at + "outage": {"period": every, "down": down, "mode": "blocked"}}
    if outage.period is not None:
        return {at + ("outage.period" if field == "outage_every" else "outage.down"): ms}
    assert outage.mean_up is not None and outage.mean_down is not None
    if field == "outage_for":
        return {at + "outage.mean_down": ms}
    return {at + "outage.mean_up": max(1.0, ms - outage.mean_down)}


def _burst(loss: float) -> dict[str, float] | None:
    loss = min(loss, BURSTY_MAX_LOSS)
    if loss <= 0:
        return {"p_enter": 0.0, "p_exit": BURST_EXIT, "loss_in_burst": 1.0, "loss_outside": 0.0}
    # Mean loss L = p_enter / (p_enter + p_exit) with loss 1 in a burst.
    p_enter = loss * BURST_EXIT / (1 - loss)
    p_exit = BURST_EXIT
    if p_enter > 1.0:
        p_enter, p_exit = 1.0, (1 - loss) / loss
    return {"p_enter": p_enter, "p_exit": p_exit, "loss_in_burst": 1.0, "loss_outside": 0.0}


def changes_for(
    direction: Direction, field: Field, value: float | str, link: LinkSpec
) -> dict[str, Any]:
    """The dotted-path patch (see `engine.model.spec.patch_spec`) that sets `field` to `value`
    on the default link of `direction`, given the link in force."""
    at = f"{direction}."
    if field == "rate":
        return {at + "rate": int(float(value))}
    if field == "queue":
        return {at + "queue.packets": int(float(value))}
    if field == "loss":
        if loss_model(link) == "bursty" and 0 <= float(value) <= 1:  # else: the gate says why
            return {at + "loss": 0.0, at + "burst_loss": _burst(float(value))}
        return {at + "loss": float(value)}
    if field == "discipline":
        changes: dict[str, Any] = {at + "queue.discipline": value}
        changes.update({at + f"queue.{name}": None for name in _AQM_SETTINGS})
        if value not in ("codel", "fq_codel", "pie"):
            changes[at + "queue.ecn"] = False
        return changes
    if field == "ecn":
        return {at + "queue.ecn": value == "on"}
    if field == "seed":
        seed = TUI_SEED if link.seed is None else link.seed
        return {at + "seed": seed if value == "on" else None}
    if field == "slot":
        ms = float(value)
        if ms <= 0:
            return {at + "slot": None}
        if link.slot is None:
            return {at + "slot": {"min_delay": ms}}
        longest = link.slot.max_delay
        kept = None if longest is None or longest < ms else longest
        return {at + "slot.min_delay": ms, at + "slot.max_delay": kept}
    if field in ("outage", "outage_every", "outage_for"):
        return _outage_changes(at, field, value, link)
    if field in FAULT_FIELDS:
        return fault_changes(at, field, value, link)
    if field == "loss_model":
        loss = mean_loss(link)
        if value == "bursty":
            return {at + "loss": 0.0, at + "burst_loss": _burst(loss)}
        return {at + "loss": loss, at + "burst_loss": None}
    return {at + field: value}
