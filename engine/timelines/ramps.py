"""Ramps: the spec partway from one step's to the next. The numeric fields of every link move
linearly; every other field takes the end's value at once (see `timeline` for the list)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from engine.model.spec import LinkPair, LinkSpec, Spec

#: Integer fields that ramp (rounded), beside every float field of a LINK.
_RAMPED_INTEGERS = ("rate",)
_QUEUE_INTEGERS = ("packets", "bytes", "flows", "quantum")


def _mix(a: float, b: float, f: float) -> float:
    return a + (b - a) * f


def _mix_fields(start: BaseModel, end: BaseModel, f: float, integers: tuple[str, ...]
                ) -> dict[str, Any]:  # fmt: skip
    """The numeric fields set on both sides, mixed: floats as they are, `integers` rounded
    (and at least 1); booleans, names and fields unset on one side take the end's value."""
    values: dict[str, Any] = {}
    for key in type(end).model_fields:
        a, b = getattr(start, key), getattr(end, key)
        if isinstance(a, float) and isinstance(b, float):
            values[key] = _mix(a, b, f)
        elif key in integers and isinstance(a, int) and isinstance(b, int):
            values[key] = max(1, round(_mix(a, b, f)))
    return values


def _mix_link(start: LinkSpec, end: LinkSpec, f: float) -> LinkSpec:
    values = _mix_fields(start, end, f, _RAMPED_INTEGERS)
    if end.rate == 0 or start.rate == 0:
        values["rate"] = round(_mix(start.rate, end.rate, f))
    same_discipline = start.queue.discipline == end.queue.discipline
    queue = _mix_fields(start.queue, end.queue, f, _QUEUE_INTEGERS)
    if not same_discipline:  # another AQM's settings do not mix with these
        queue = {k: v for k, v in queue.items() if k in ("packets", "bytes", "ms", "held_bytes")}
    values["queue"] = end.queue.model_copy(update=queue)
    if start.slot is not None and end.slot is not None:
        values["slot"] = end.slot.model_copy(update=_mix_fields(start.slot, end.slot, f, ()))
    # An outage's schedule starts again whenever it changes: it takes the end's at once.
    return end.model_copy(update=values)


def _mix_pair(start: LinkPair, end: LinkPair, f: float) -> LinkPair:
    return LinkPair(
        ingress=_mix_link(start.ingress, end.ingress, f),
        egress=_mix_link(start.egress, end.egress, f),
    )


def interpolate(start: Spec, end: Spec, fraction: float) -> Spec:
    """The spec `fraction` (0..1) of the way from `start` to `end`. Flows are matched by
    label; a flow only in `end` takes its values at once."""
    f = min(1.0, max(0.0, fraction))
    if f >= 1.0:
        return end
    starts = {flow.label: flow.link for flow in start.flows}
    flows = [
        flow.model_copy(update={"link": _mix_pair(starts[flow.label], flow.link, f)})
        if flow.label in starts
        else flow
        for flow in end.flows
    ]
    return end.model_copy(
        update={"default_link": _mix_pair(start.default_link, end.default_link, f), "flows": flows}
    )
