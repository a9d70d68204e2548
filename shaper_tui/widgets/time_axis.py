"""The time axis under a panel's graphs: how many seconds ago each column was drawn, so a
reader can tell when a spike happened. It lays out like a `MetricSpark` (label column, graph,
figure column), so its ticks sit under the graphs' cells."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label

from shaper_tui.widgets.metric_spark import HISTORY

#: Seconds between two samples of a panel's graphs (the app's DISPLAY_INTERVAL); a graph
#: cell holds two samples.
SAMPLE_SECONDS = 0.5
#: Tick steps tried, in seconds: the first whose labels stand at least MIN_GAP cells apart. An
#: axis of MINUTES_FROM seconds or more ticks in whole minutes, labelled `-Nm`; a shorter one
#: in `-Ns`: one unit an axis (it read `-7m` beside `-390s`).
STEPS = (5, 10, 15, 30, 60, 120, 300, 600)
MINUTE_STEPS = (60, 120, 300, 600)
MINUTES_FROM = 180.0
MIN_GAP = 8


def axis_line(width: int, seconds_per_cell: float, span: float) -> str:
    """`width` cells: `now` at the right end, `-N` starting at the cell drawn N seconds or
    minutes ago, for ticks within `span` seconds (what the graph holds); a tick that would
    run into the next label is left out."""
    if width <= 0:
        return ""
    cells = [" "] * width
    now = "now"[:width]
    cells[width - len(now) :] = now
    limit = width - len(now) - 1  # a label must end before this cell
    minutes = span >= MINUTES_FROM
    steps = MINUTE_STEPS if minutes else STEPS
    step = next((s for s in steps if s / seconds_per_cell >= MIN_GAP), steps[-1])
    ago = step
    while ago <= span:
        at = width - 1 - round(ago / seconds_per_cell)
        label = f"-{ago // 60}m" if minutes else f"-{ago}s"
        if at < 0:
            break
        if at + len(label) <= limit:
            cells[at : at + len(label)] = label
            limit = at - 1
        ago += step
    return "".join(cells)


class _AxisLine(Widget):
    DEFAULT_CSS = """
    _AxisLine {
        width: 1fr;
        height: 1;
        margin: 0 1 0 0;
        color: $text-muted;
    }
    """

    def render(self) -> Text:
        # The span drawn: what the graph's cells hold, at most what is kept.
        width = self.size.width
        span = min(HISTORY, 2 * width) * SAMPLE_SECONDS
        return Text(axis_line(width, 2 * SAMPLE_SECONDS, span), no_wrap=True)


class TimeAxis(Horizontal):
    DEFAULT_CSS = """
    TimeAxis {
        height: 1;
        width: 1fr;
    }
    TimeAxis > Label {
        width: 11;  /* the graphs' label column (metric_spark.LABEL_COLUMN) */
    }
    TimeAxis > .time-axis--figure {
        width: 12;
    }
    """

    def compose(self) -> ComposeResult:
        yield Label("")
        yield _AxisLine()
        yield Label("", classes="time-axis--figure")
