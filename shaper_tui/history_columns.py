"""What the history screen draws, as plain numbers (tested without Textual): the kept stats of
one direction cut into as many columns as the graphs have, with the rate and latency set in
each (from the spec in force then: before the first change, the spec in force at the start),
and the scales, clipped so that one burst does not flatten the rest."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from engine.model.spec import UNLIMITED_RATE, Direction, Spec
from engine.model.stats import DirectionStats
from shaper_tui.widgets.scaled_graph import nice_ceiling

#: A scale's top is at most this percentile of the columns (and at least the value set most of
#: the time): a burst (a minute of `unlimited` in ten) is drawn full, in the warning colour,
#: and the rest keeps its height.
CLIP_PERCENTILE = 80


@dataclass(frozen=True, slots=True)
class Sample:
    """What the history keeps of one stats report: the figures the columns use. A report as
    decoded (three pydantic models, their dicts and field sets) took ~4.7 kB; ten minutes of
    them (2400) grew the TUI by ~11 MB after it started (issue 35, "Done when")."""

    at: float  # seconds since the history started
    direction: Direction
    pid: int
    reported: float  # the report's own `at` (the worker's clock): rates divide by it
    bytes_out: int
    drops: int  # all causes
    delay_samples: int
    delay_p50_ms: float

    @classmethod
    def of(cls, stats: DirectionStats, at: float) -> Sample:
        total = stats.total
        return cls(at=at, direction=stats.direction, pid=stats.pid, reported=stats.at,
                   bytes_out=total.bytes_out, drops=total.drops.total,
                   delay_samples=stats.delay_samples,
                   delay_p50_ms=stats.delay_p50_ms)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SetPoint:
    """What the history keeps of a spec put in force: the rate (0 when unlimited) and the
    latency set each way. A spec as decoded, in its step, took ~22 kB, and a flood of
    changes kept one per half second for ten minutes (1201 of them: ~27 MB)."""

    at: float
    ingress: tuple[float, float]  # (rate set in bit/s, latency set in ms)
    egress: tuple[float, float]

    @classmethod
    def of(cls, spec: Spec, at: float) -> SetPoint:
        def figures(direction: Direction) -> tuple[float, float]:
            link = spec.link(direction)
            rate = float(link.rate) if link.rate < UNLIMITED_RATE else 0.0
            return rate, float(link.latency)

        return cls(at=at, ingress=figures("ingress"), egress=figures("egress"))


@dataclass
class Columns:
    """Per column, oldest first: throughput out (bit/s), the rate set (0 when unlimited),
    the delay measured (median, ms), the latency set (ms), drops a second (all causes), and
    the columns where the spec changed."""

    rate: list[float] = field(default_factory=list)
    rate_set: list[float] = field(default_factory=list)
    delay: list[float] = field(default_factory=list)
    latency_set: list[float] = field(default_factory=list)
    drops: list[float] = field(default_factory=list)
    changes: list[int] = field(default_factory=list)
    #: Seconds from the first column's start to the last's end.
    span: float = 0.0


def _set_at(steps: list[SetPoint], at: float) -> SetPoint | None:
    """What was set at `at`; before the first step, the first step's (the spec the TUI
    found at the start)."""
    found = steps[0] if steps else None
    for step in steps:
        if step.at > at:
            break
        found = step
    return found


def _samples(lines: list[Sample], steps: list[SetPoint]) -> list[tuple[float, list[float]]]:
    """(time, [bits/s out, rate set, delay ms, latency set, drops/s]) per pair of lines."""
    out: list[tuple[float, list[float]]] = []
    for then, now in itertools.pairwise(lines):
        span = now.reported - then.reported
        if span <= 0 or then.pid != now.pid:
            continue  # a worker restarted: its counters began again
        bits = max(0, now.bytes_out - then.bytes_out) * 8 / span
        drops = now.drops - then.drops
        # No frame measured (a worker's state report, an idle link): no delay, not the
        # queue's (which leaves out the latency and read below the latency set).
        delay = now.delay_p50_ms if now.delay_samples else math.nan
        point = _set_at(steps, now.at)
        rate_set, latency = (0.0, 0.0) if point is None else getattr(point, now.direction)
        out.append((now.at, [bits, rate_set, delay, latency, max(0, drops) / span]))
    return out


def columns(
    lines: list[Sample], steps: list[SetPoint], direction: Direction, count: int
) -> Columns:
    """`count` columns over the time the lines of `direction` cover, each the mean of the
    samples in it that have a value (an empty one repeats the one before, or the first)."""
    mine = [line for line in lines if line.direction == direction]
    samples = _samples(mine, steps)
    result = Columns()
    if not samples or count <= 0:
        return result
    start, end = mine[0].at, samples[-1][0]
    width = max(end - start, 1e-9) / count
    sums = [[0.0] * 5 for _ in range(count)]
    counts = [[0] * 5 for _ in range(count)]
    for at, values in samples:
        index = min(count - 1, int((at - start) / width))
        for n, value in enumerate(values):
            if not math.isnan(value):
                sums[index][n] += value
                counts[index][n] += 1
    # Columns before the first of a series' values: its first value (0 if none).
    previous = [next((v[n] for _, v in samples if not math.isnan(v[n])), 0.0) for n in range(5)]
    series = (result.rate, result.rate_set, result.delay, result.latency_set, result.drops)
    for index in range(count):
        for n, values in enumerate(series):
            if counts[index][n]:
                previous[n] = sums[index][n] / counts[index][n]
            values.append(previous[n])
    result.changes = sorted(
        {min(count - 1, int((s.at - start) / width)) for s in steps if start < s.at <= end}
    )
    result.span = end - start
    return result


def clipped_top(values: list[float], set_values: list[float], least: float) -> float:
    """The scale's top: the CLIP_PERCENTILE-th percentile of `values`, at least what is set
    most of the time (a minute at 1 Gbit/s does not set it either) and `least`, rounded up
    to 1, 2 or 5 x 10^k."""
    high = _percentile(values)
    return nice_ceiling(max(high, _percentile(set_values), least), least)


def _percentile(values: list[float]) -> float:
    ordered = sorted(v for v in values if math.isfinite(v))
    return ordered[min(len(ordered) - 1, len(ordered) * CLIP_PERCENTILE // 100)] if ordered else 0
