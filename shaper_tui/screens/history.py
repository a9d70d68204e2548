"""The history screen: the last minutes per direction, drawn with the chart `linkshaper plot`
draws for a recording (plotext): configured rate against measured throughput, the latency
set and the queue delay measured, drops a second by cause, every spec change marked."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from engine.timelines.plot import chart
from shaper_tui.history import History
from shaper_tui.widgets.key_footer import KeyFooter

REFRESH = 1.0


class HistoryScreen(Screen[None]):
    DEFAULT_CSS = """
    HistoryScreen > Static {
        height: 1fr;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,g", "close", "Close", tooltip="Close the history"),
    ]

    def __init__(self, history: History) -> None:
        super().__init__()
        self.history = history
        self.canvas = Static("")

    def compose(self) -> ComposeResult:
        yield self.canvas
        yield KeyFooter()

    def on_mount(self) -> None:
        self.set_interval(REFRESH, self.draw)
        self.call_after_refresh(self.draw)

    def draw(self) -> None:
        width, height = self.canvas.size.width, self.canvas.size.height
        if width < 20 or height < 12:
            self.canvas.update("The history needs at least 20 x 12 cells.")
            return
        if not self.history.stats:
            self.canvas.update("No stats yet: the history starts when the engine reports.")
            return
        matrix = chart(self.history.timeline(), width, height,
                       x_label="seconds, over the last ten minutes at most")  # fmt: skip
        self.canvas.update(Text.from_ansi(matrix.string()))  # type: ignore[attr-defined]

    def action_close(self) -> None:
        self.dismiss(None)
