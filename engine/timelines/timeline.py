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

This module is the format itself (its lines as models, a timeline held whole); `parsing`
validates lines, `reading` reads files and bytes, `resolver` builds the spec the steps make,
`ramps` mixes two specs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from engine.model.change_source import ChangeSource
from engine.model.errors import LinkshaperError
from engine.model.spec import Spec, SpecError
from engine.model.spec_patch import patch_spec
from engine.model.stats import DirectionStats

VERSION = 1
HEADER_KEY = "linkshaper_timeline"
#: Latest a line's `at` and longest a `ramp` may be, in seconds: a week. A replay turns them
#: into clock times, and `at: 1e300` once passed the check and failed after a step applied.
MAX_TIMELINE_SECONDS = 7 * 24 * 3600


def _within_a_week(value: float) -> float:
    if value > MAX_TIMELINE_SECONDS:
        raise ValueError(f"at most {MAX_TIMELINE_SECONDS} s (a week) (got {value:.6g} s)")
    return value


#: Seconds on a timeline: 0 up to MAX_TIMELINE_SECONDS.
TimelineSeconds = Annotated[float, Field(ge=0), AfterValidator(_within_a_week)]


class TimelineError(LinkshaperError, ValueError):
    """A timeline that cannot be used: one line naming the file, the line and the field."""


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Header(_Line):
    linkshaper_timeline: int = Field(ge=1, le=VERSION)
    started: str | None = None
    note: str | None = None


class SpecStep(_Line):
    at: TimelineSeconds
    spec: Spec
    ramp: TimelineSeconds = 0.0
    source: ChangeSource | None = None


class PatchStep(_Line):
    at: TimelineSeconds
    set: dict[str, Any]
    ramp: TimelineSeconds = 0.0
    source: ChangeSource | None = None


class StatsLine(_Line):
    at: TimelineSeconds
    stats: DirectionStats


Step = SpecStep | PatchStep


def line_end(line: Step | StatsLine) -> float:
    """Where a line ends on the timeline: the one rule for a timeline's length. A step ends
    after its ramp; a stats sample ends at its `at`, so a recording lasts up to its last line
    and a loop holds the last step as long as it held when recorded."""
    return line.at + line.ramp if isinstance(line, SpecStep | PatchStep) else line.at


class StepSource(Protocol):
    """What a replay reads: the steps in order, as many times as it loops."""

    @property
    def name(self) -> str: ...

    @property
    def duration(self) -> float: ...

    @property
    def step_count(self) -> int: ...

    def iter_steps(self) -> Iterator[Step]: ...


class StatsSource(Protocol):
    """What a chart reads: the steps and the stats samples, each in order."""

    def iter_steps(self) -> Iterator[Step]: ...

    def iter_stats(self) -> Iterator[StatsLine]: ...


@dataclass(frozen=True)
class Timeline:
    """A timeline held whole in memory (a short one, or the TUI's last minutes). Long files
    are read as they go instead: see `reading.open_timeline`."""

    steps: list[Step]
    stats: list[StatsLine]
    header: Header | None = None
    name: str = "timeline"

    @property
    def duration(self) -> float:
        return max(map(line_end, [*self.steps, *self.stats]), default=0.0)

    @property
    def step_count(self) -> int:
        return len(self.steps)

    def iter_steps(self) -> Iterator[Step]:
        return iter(self.steps)

    def iter_stats(self) -> Iterator[StatsLine]:
        return iter(self.stats)

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
