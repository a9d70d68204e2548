"""One live figure: a label, a sparkline of its recent history and its current value."""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Sparkline

from shaper_tui.widgets.value_slider import LABEL_WIDTH

HISTORY = 100


class MetricSpark(Horizontal):
    DEFAULT_CSS = """
    MetricSpark {
        height: 1;
        width: 1fr;
    }
    MetricSpark > .metric-label {
        width: 10;
        color: $text-muted;
    }
    MetricSpark > Sparkline {
        width: 1fr;
        height: 1;
        margin: 0 1;
    }
    MetricSpark > .metric-figure {
        width: 12;
        text-align: right;
    }
    """

    def __init__(self, label: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self.history: deque[float] = deque([0.0] * HISTORY, maxlen=HISTORY)
        # By reference, so that samples arriving before mount or after unmount are harmless.
        self.spark = Sparkline(list(self.history))
        self.figure = Label("", classes="metric-figure")

    def compose(self) -> ComposeResult:
        yield Label(f"{self.label:<{LABEL_WIDTH}}", classes="metric-label")
        yield self.spark
        yield self.figure

    def push(self, value: float, figure: str) -> None:
        self.history.append(value)
        # Sparkline scales to the data's own min..max, which draws a steady rate as a floor;
        # a 0 in front pins the bottom of the scale at zero.
        self.spark.data = [0.0, *self.history]
        # Its width is fixed: a layout pass of the whole screen for each figure would cost the
        # TUI most of its CPU (measured: half of it went to layout before).
        self.figure.update(figure, layout=False)
