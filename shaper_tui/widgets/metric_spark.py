"""One live figure: a label with the top of its graph's scale, a graph of its recent history
on that scale (scaled_graph.py), and its current value."""

from __future__ import annotations

from collections import deque
from itertools import islice

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from shaper_tui.widgets.scaled_graph import ScaledGraph, nice_ceiling

#: The widest graph a panel fills with history, in cells (two samples a cell): at 200x60 a
#: graph is 72 cells, and 50 s of samples left its 22 leftmost columns blank.
WIDEST_CELLS = 300
#: Samples kept: at two a second (the app's DISPLAY_INTERVAL), the last 300 s, enough for
#: the widest graph (memory stays bounded: a few kB a graph).
HISTORY = 2 * WIDEST_CELLS
#: A scale that follows the data follows this many of the newest samples (5 s at two a second):
#: after a spike it is back within seconds, the spike drawn full in the warning colour meanwhile
#: (a scale over the whole history stayed at a burst's `5G` for 50 s).
SCALE_SAMPLES = 10
#: The label column: the figure's name, then its scale's top with its unit where it fits
#: (`Out 20Mb/s`, `Lost 20k/s`, `Delay 50ms`: a bare `1` or `20k` said nothing of what it
#: counts); 11 columns, so that an 80-column panel keeps graphs of 12 cells.
LABEL_COLUMN = 11


class MetricSpark(Horizontal):
    DEFAULT_CSS = """
    MetricSpark {
        height: 1;
        width: 1fr;
    }
    MetricSpark > .metric-label {
        width: 11;
        color: $text-muted;
    }
    MetricSpark > .metric-label.-at-rate {
        color: $accent;
    }
    MetricSpark > ScaledGraph {
        width: 1fr;
        height: 1fr;
        margin: 0 1 0 0;
    }
    MetricSpark > .metric-figure {
        width: 12;
        text-align: right;
    }
    """

    def __init__(self, label: str, *, least: float = 1.0, id: str | None = None) -> None:
        """`least`: the smallest top the scale takes when it follows the data."""
        super().__init__(id=id)
        self.label = label
        self.least = least
        self.history: deque[float] = deque([0.0] * HISTORY, maxlen=HISTORY)
        # By reference, so that samples arriving before mount or after unmount are harmless.
        self.graph = ScaledGraph(self.history)
        self.scale = Label(self._label_text(""), classes="metric-label")
        self.figure = Label("", classes="metric-figure")
        self._shown_scale = ""
        self._shown_figure = ""

    def _label_text(self, scale: str) -> str:
        room = LABEL_COLUMN - len(self.label) - 1
        if len(scale) > room:  # (`Q-drops 500`: the unit goes before the figure is cut)
            scale = scale.removesuffix("/s")
        return f"{self.label} {scale[:room]:>{room}}" if scale else self.label

    def compose(self) -> ComposeResult:
        yield self.scale
        yield self.graph
        yield self.figure

    def ceiling_for(self, ceiling: float | None, adding: float = 0.0) -> float:
        """The top the scale takes with `ceiling` given (or None), `adding` the next sample."""
        if ceiling is not None and ceiling > 0:
            return ceiling
        recent = islice(reversed(self.history), SCALE_SAMPLES)
        return nice_ceiling(max(max(recent), adding), self.least)

    def push(
        self, value: float, figure: str, ceiling: float | None = None, scale_text: str = ""
    ) -> float:
        """Add a sample. `ceiling`: the scale's top (the rate in force, say), shown in the
        accent colour; None: the recent maximum, rounded up to 1, 2 or 5 x 10^k. The scale's
        top is shown after the label as `scale_text` formats it ("{:g}" of it by default).
        Returns the ceiling used."""
        self.history.append(value)
        fixed = ceiling is not None and ceiling > 0
        top = self.ceiling_for(ceiling)
        self.graph.ceiling = top
        text = scale_text or f"{top:g}"
        if text != self._shown_scale or self.scale.has_class("-at-rate") != fixed:
            self._shown_scale = text
            self.scale.set_class(fixed, "-at-rate")
            self.scale.update(self._label_text(text), layout=False)
        self.graph.redraw()  # only if it looks different
        if figure != self._shown_figure:
            self._shown_figure = figure
            # Its width is fixed: a layout pass of the whole screen for each figure would cost
            # the TUI most of its CPU (measured: half of it went to layout before).
            self.figure.update(figure, layout=False)
        return top
