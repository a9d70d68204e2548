"""`linkshaper plot FILE`: a recorded run drawn in the terminal with plotext.

Per direction, the configured rate against the measured throughput and the configured
latency; then drops per second by cause. The measurement comes from the timeline's stats
lines (`run --record-stats`, `record --stats`, or the TUI's recording).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import plotext

from engine.model.spec import DIRECTIONS, UNLIMITED_RATE, Direction, Spec
from engine.timelines.resolver import Resolver
from engine.timelines.timeline import StatsLine, StatsSource, Step

MBIT = 1e6


#: Points kept per series: far more than a terminal's columns, so the chart looks the same,
#: and a recording of any length is drawn in bounded memory (a 1e6-line file took 2.7 GB).
#: Beyond it, neighbouring points are averaged in pairs (twice as many samples a point).
MAX_POINTS = 4096
#: Change marks drawn at most: more would fill the chart; beyond, every other is kept.
MAX_CHANGE_MARKS = 512


@dataclass
class Series:
    """Points in the order they come, at most MAX_POINTS: past that, each point is the mean
    of `stride` samples (a power of two), so a long recording keeps its shape and area."""

    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    stride: int = 1
    _sum_x: float = 0.0
    _sum_y: float = 0.0
    _count: int = 0

    def add(self, x: float, y: float) -> None:
        self._sum_x += x
        self._sum_y += y
        self._count += 1
        if self._count < self.stride:
            return
        self.x.append(self._sum_x / self._count)
        self.y.append(self._sum_y / self._count)
        self._sum_x = self._sum_y = 0.0
        self._count = 0
        if len(self.x) >= MAX_POINTS:
            self.x = [(a + b) / 2 for a, b in zip(self.x[::2], self.x[1::2], strict=False)]
            self.y = [(a + b) / 2 for a, b in zip(self.y[::2], self.y[1::2], strict=False)]
            self.stride *= 2

    def finish(self) -> None:
        """The samples of a last, partial point."""
        if self._count:
            self.x.append(self._sum_x / self._count)
            self.y.append(self._sum_y / self._count)
            self._sum_x = self._sum_y = 0.0
            self._count = 0


@dataclass
class DirectionSeries:
    rate_set: Series = field(default_factory=Series)
    measured: Series = field(default_factory=Series)
    latency_set: Series = field(default_factory=Series)
    loss_drops: Series = field(default_factory=Series)
    queue_drops: Series = field(default_factory=Series)
    queue_delay: Series = field(default_factory=Series)

    def finish(self) -> None:
        for s in (self.rate_set, self.measured, self.latency_set, self.loss_drops,
                  self.queue_drops, self.queue_delay):  # fmt: skip
            s.finish()


class _SpecsInTime:
    """The spec in force at a time, for times that come in order: the steps are read once,
    as far as needed (a stats line written before a later step's line still gets the spec
    in force at its own time)."""

    def __init__(self, timeline: StatsSource) -> None:
        self._steps = timeline.iter_steps()
        self._resolver = Resolver(Spec())
        self._number = 0
        self._next: Step | None = next(self._steps, None)
        self._any = False

    def at(self, at: float) -> Spec | None:
        while self._next is not None and self._next.at <= at:
            self._number += 1
            self._resolver.add(self._next, self._number)
            self._any = True
            self._next = next(self._steps, None)
        return self._resolver.spec() if self._any else None


def series(timeline: StatsSource) -> dict[Direction, DirectionSeries]:
    """What the chart shows, as plain numbers (tested without drawing), read in one pass over
    the stats lines (and one over the steps beside it)."""
    specs = _SpecsInTime(timeline)
    out: dict[Direction, DirectionSeries] = {d: DirectionSeries() for d in DIRECTIONS}
    previous: dict[Direction, StatsLine] = {}
    for line in timeline.iter_stats():
        stats = line.stats
        d = stats.direction
        before = previous.get(d)
        previous[d] = line
        spec = specs.at(line.at)
        if spec is not None:
            link = spec.link(d)
            if link.rate < UNLIMITED_RATE and link.trace is None:
                out[d].rate_set.add(line.at, link.rate / MBIT)
            out[d].latency_set.add(line.at, link.latency)
        if before is None or before.stats.pid != stats.pid or stats.at <= before.stats.at:
            continue
        span = stats.at - before.stats.at
        now, then = stats.total, before.stats.total
        out[d].measured.add(line.at, max(0, now.bytes_out - then.bytes_out) * 8 / span / MBIT)
        lost = now.drops.loss + now.drops.outage - then.drops.loss - then.drops.outage
        queued = now.drops.queue_full + now.drops.aqm - then.drops.queue_full - then.drops.aqm
        out[d].loss_drops.add(line.at, max(0, lost) / span)
        out[d].queue_drops.add(line.at, max(0, queued) / span)
        out[d].queue_delay.add(line.at, now.queue_delay_ms)
    for direction_series in out.values():
        direction_series.finish()
    return out


def change_marks(timeline: StatsSource) -> list[float]:
    """The times of the spec changes after the start, at most MAX_CHANGE_MARKS (evenly
    thinned beyond)."""
    marks: list[float] = []
    stride = 1
    for index, step in enumerate(s for s in timeline.iter_steps() if s.at > 0):
        if index % stride:
            continue
        marks.append(step.at)
        if len(marks) >= MAX_CHANGE_MARKS:
            marks = marks[::2]
            stride *= 2
    return marks


def _mark_changes(plot: object, changes: list[float], top: float) -> None:
    """A vertical mark at each spec change, from 0 to `top` of the subplot's left axis."""
    for at in changes:
        plot.draw(plot.signal([at, at], [0.0, top], marker="│").lines())  # type: ignore[attr-defined]


TITLES = {"ingress": "Download (ingress)", "egress": "Upload (egress)"}


def chart(timeline: StatsSource, width: int = 100, height: int = 36,
          x_label: str = "seconds from the start of the recording") -> object:  # fmt: skip
    """The plotext matrix of the chart (`.string()`, `.save()`)."""
    data = series(timeline)
    plotext.terminal.limit(False, False)  # the size asked for, also for a file or a pipe
    figure = plotext.figure
    figure.clear.all()
    figure.plot_size(width, height)
    figure.subplots(3, 1)
    changes = change_marks(timeline)
    for row, direction in enumerate(DIRECTIONS, start=1):
        plot = figure.subplot(row, 1)
        plot.title(
            f"{TITLES[direction]}: Mbit/s set ─ measured •; ms (right) latency +, queue q; │ change"
        )
        d = data[direction]
        if d.rate_set.x:
            plot.draw(plot.signal(d.rate_set.x, d.rate_set.y).lines())
        if d.measured.x:
            plot.draw(plot.signal(d.measured.x, d.measured.y, marker="•"))
        if d.latency_set.x:
            plot.draw(plot.signal(d.latency_set.x, d.latency_set.y, marker="+", yside="right"))
        if d.queue_delay.x and any(d.queue_delay.y):
            plot.draw(plot.signal(d.queue_delay.x, d.queue_delay.y, marker="q", yside="right"))
        _mark_changes(plot, changes, max([*d.rate_set.y, *d.measured.y, 1.0]))
        plot.legend(active=False)
    plot = figure.subplot(3, 1)
    plot.title("Drops per second: loss, outage (• download, o upload); queue, AQM (x, +)")
    markers = {("ingress", "loss"): "•", ("egress", "loss"): "o",
               ("ingress", "queue"): "x", ("egress", "queue"): "+"}  # fmt: skip
    top = 1.0
    for direction in DIRECTIONS:
        d = data[direction]
        for cause, s in (("loss", d.loss_drops), ("queue", d.queue_drops)):
            if s.x:
                plot.draw(plot.signal(s.x, s.y, marker=markers[direction, cause]))
                top = max(top, *s.y)
    _mark_changes(plot, changes, top)
    plot.label(x_label, axis="x")
    plot.legend(active=False)
    return figure.build()


def plot_timeline(
    timeline: StatsSource, out: str | None, width: int, height: int, show: bool = True
) -> str:
    """Draw it; save it to `out` (.html keeps colours, anything else is plain text)."""
    matrix = chart(timeline, width, height)
    text: str = matrix.string(colorless=True)  # type: ignore[attr-defined]
    if show:
        matrix.print()  # type: ignore[attr-defined]
    if out:
        if out.endswith(".html"):
            Path(out).write_text(matrix.html())  # type: ignore[attr-defined]
        else:
            Path(out).write_text(text + "\n")
    return text
