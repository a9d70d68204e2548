"""Timelines: a tuning session as JSON Lines, recorded or written by hand, and replayed.

Format, version 1 (one JSON object per line; blank lines and lines starting with `#` are
ignored):

    {"linkshaper_timeline": 1, "started": "2026-11-21T10:00:00+00:00"}   optional header
    {"at": 0, "spec": {...}}                  the whole spec in force from `at` seconds on
    {"at": 5, "set": {"egress.latency": "80ms"}}      or some fields (dotted paths, units)
    {"at": 10, "spec": {...}, "ramp": 30}     reach the step's values linearly over 30 s
    {"at": 1.2, "stats": {...}}               a stats sample (replay skips these; plot uses)

Steps are in order of `at`. A step may carry `"source"` (who made the change, in
recordings). Ramps move the numeric fields of every link (rate, loss, latency, jitter,
jitter strength, the netem probabilities and correlations, queue limits and the AQM's
settings while the discipline stays, slot delays) from the spec in force when the ramp
starts; every other field (names, switches, `gap`, overheads, outages) takes the step's
value at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.model.errors import LinkshaperError
from engine.model.files import read_regular_file
from engine.model.spec import (
    PASS_THROUGH,
    LinkPair,
    LinkSpec,
    Spec,
    SpecError,
    describe_validation_error,
    patch_spec,
)
from engine.model.stats import DirectionStats

VERSION = 1
HEADER_KEY = "linkshaper_timeline"


class TimelineError(LinkshaperError, ValueError):
    """A timeline that cannot be used: one line naming the file, the line and the field."""


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Header(_Line):
    linkshaper_timeline: int = Field(ge=1, le=VERSION)
    started: str | None = None
    note: str | None = None


class SpecStep(_Line):
    at: float = Field(ge=0)
    spec: Spec
    ramp: float = Field(default=0.0, ge=0)
    source: str | None = None


class PatchStep(_Line):
    at: float = Field(ge=0)
    set: dict[str, Any]
    ramp: float = Field(default=0.0, ge=0)
    source: str | None = None


class StatsLine(_Line):
    at: float = Field(ge=0)
    stats: DirectionStats


Step = SpecStep | PatchStep


@dataclass(frozen=True)
class Timeline:
    steps: list[Step]
    stats: list[StatsLine]
    header: Header | None = None
    name: str = "timeline"

    @property
    def duration(self) -> float:
        return max((s.at + s.ramp for s in self.steps), default=0.0)

    def resolve(self, base: Spec) -> list[ResolvedStep]:
        """Whole specs for every step, patches applied in order onto `base` (the spec in force
        when a replay starts). Raises TimelineError naming the step's line."""
        current = base
        resolved: list[ResolvedStep] = []
        for index, step in enumerate(self.steps):
            if isinstance(step, SpecStep):
                target = step.spec
            else:
                try:
                    target = patch_spec(current, step.set)
                except SpecError as exc:
                    raise TimelineError(f"{self.name}: step {index + 1}: {exc}") from None
            resolved.append(ResolvedStep(step.at, target, step.ramp, step.source))
            current = target
        return resolved


@dataclass(frozen=True)
class ResolvedStep:
    at: float
    spec: Spec
    ramp: float = 0.0
    source: str | None = None


def _parse_line(data: Any) -> Header | Step | StatsLine:
    if not isinstance(data, dict):
        raise TimelineError("not a JSON object")
    if HEADER_KEY in data:
        return Header.model_validate(data)
    if "stats" in data:
        return StatsLine.model_validate(data)
    if "spec" in data:
        return SpecStep.model_validate(data)
    if "set" in data:
        return PatchStep.model_validate(data)
    raise TimelineError('a line needs "spec", "set" or "stats" (or is the header)')


def parse_timeline(lines: Iterable[str], name: str = "timeline") -> Timeline:
    """Every line validated before anything is used; the first bad one is reported."""
    header: Header | None = None
    steps: list[Step] = []
    stats: list[StatsLine] = []
    last_at = 0.0
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{name} line {number}"
        try:
            item = _parse_line(json.loads(text))
        except json.JSONDecodeError as exc:
            raise TimelineError(f"{where}: not JSON: {exc.msg}") from None
        except ValidationError as exc:
            raise TimelineError(f"{where}: {describe_validation_error(exc)}") from None
        except TimelineError as exc:
            raise TimelineError(f"{where}: {exc}") from None
        except RecursionError:
            raise TimelineError(f"{where}: nested too deeply") from None
        except Exception as exc:  # a bad line must be an error message, never a crash
            raise TimelineError(f"{where}: cannot be read ({type(exc).__name__})") from None
        if isinstance(item, Header):
            if steps or stats or header is not None:
                raise TimelineError(f"{where}: the header must be the first line")
            header = item
        elif isinstance(item, StatsLine):
            stats.append(item)
        else:
            if item.at < last_at:
                raise TimelineError(f"{where}: at: {item.at} comes before {last_at}")
            last_at = item.at
            if isinstance(item, PatchStep):
                try:  # fields and values checked now, on a neutral base
                    patch_spec(PASS_THROUGH, item.set)
                except SpecError as exc:
                    raise TimelineError(f"{where}: set: {exc}") from None
            steps.append(item)
    return Timeline(steps=steps, stats=stats, header=header, name=name)


#: Largest timeline file read (an hour of stats at ten a second is well under it).
MAX_TIMELINE_BYTES = 256 * 1024 * 1024


def read_timeline(path: str | Path) -> Timeline:
    try:
        data = read_regular_file(str(path), MAX_TIMELINE_BYTES)
        text = data.decode()
    except OSError as exc:
        raise TimelineError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise TimelineError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_timeline(text.splitlines(), name=str(path))


# --- ramps ----------------------------------------------------------------------------------

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
