"""What a control shows for a link, and the spec patch that a control's new value makes.

Kept apart from the widgets so that the mapping is plain data in, plain data out, and tested
without a screen.
"""

from __future__ import annotations

from typing import Any, Literal

from engine.model.spec import UNLIMITED_RATE, Direction, LinkSpec

Field = Literal[
    "rate", "loss", "loss_model", "latency", "jitter", "jitter_strength", "jitter_distribution",
    "queue",
]  # fmt: skip

LOSS_MODELS = ("random", "bursty")
JITTER_DISTRIBUTIONS = ("uniform", "normal", "pareto")

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
    value = getattr(link, field)
    return value if isinstance(value, str) else float(value)


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
        if loss_model(link) == "bursty":
            return {at + "loss": 0.0, at + "burst_loss": _burst(float(value))}
        return {at + "loss": float(value)}
    if field == "loss_model":
        loss = mean_loss(link)
        if value == "bursty":
            return {at + "loss": 0.0, at + "burst_loss": _burst(loss)}
        return {at + "loss": loss, at + "burst_loss": None}
    return {at + field: value}
