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
from engine.timelines.timeline import StatsLine, Timeline

MBIT = 1e6


@dataclass
class Series:
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)

    def add(self, x: float, y: float) -> None:
        self.x.append(x)
        self.y.append(y)


@dataclass
class DirectionSeries:
    rate_set: Series = field(default_factory=Series)
    measured: Series = field(default_factory=Series)
    latency_set: Series = field(default_factory=Series)
    loss_drops: Series = field(default_factory=Series)
    queue_drops: Series = field(default_factory=Series)
    queue_delay: Series = field(default_factory=Series)


def _spec_at(steps: list[tuple[float, Spec]], at: float) -> Spec | None:
    current = None
    for step_at, spec in steps:
        if step_at > at:
            break
        current = spec
    return current


def series(timeline: Timeline) -> dict[Direction, DirectionSeries]:
    """What the chart shows, as plain numbers (tested without drawing)."""
    steps = [(s.at, s.spec) for s in timeline.resolve(Spec())]
    out: dict[Direction, DirectionSeries] = {d: DirectionSeries() for d in DIRECTIONS}
    previous: dict[Direction, StatsLine] = {}
    for line in timeline.stats:
        stats = line.stats
        d = stats.direction
        before = previous.get(d)
        previous[d] = line
        spec = _spec_at(steps, line.at)
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
    return out


def _mark_changes(plot: object, changes: list[float], top: float) -> None:
    """A vertical mark at each spec change, from 0 to `top` of the subplot's left axis."""
    for at in changes:
        plot.draw(plot.signal([at, at], [0.0, top], marker="│").lines())  # type: ignore[attr-defined]


TITLES = {"ingress": "Download (ingress)", "egress": "Upload (egress)"}


def chart(timeline: Timeline, width: int = 100, height: int = 36,
          x_label: str = "seconds from the start of the recording") -> object:  # fmt: skip
    """The plotext matrix of the chart (`.string()`, `.save()`)."""
    data = series(timeline)
    plotext.terminal.limit(False, False)  # the size asked for, also for a file or a pipe
    figure = plotext.figure
    figure.clear.all()
    figure.plot_size(width, height)
    figure.subplots(3, 1)
    changes = [step.at for step in timeline.steps if step.at > 0]
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
    timeline: Timeline, out: str | None, width: int, height: int, show: bool = True
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
