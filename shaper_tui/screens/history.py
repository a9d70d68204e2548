"""The history screen: the last minutes per direction, in the panels' braille graphs: the
throughput measured against the rate set (the line of dots), the delay measured against the
latency set, drops a second. Each graph's scale is clipped at the 80th percentile of what it
shows (and is at least what is set most of the time), so a burst is drawn full in the warning
colour and the rest keeps its height; a row over the time axis marks each change with `▴`."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.scalar import Scalar
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Label, Static

from engine.model.spec import DIRECTIONS, Direction
from engine.model.units import format_rate
from shaper_tui.history import History
from shaper_tui.history_columns import CLIP_PERCENTILE, Columns, clipped_top, columns
from shaper_tui.widgets.direction_panel import TITLES
from shaper_tui.widgets.key_footer import KeyFooter
from shaper_tui.widgets.panel_text import compact_ms, compact_rate
from shaper_tui.widgets.scaled_graph import ScaledGraph
from shaper_tui.widgets.time_axis import axis_line

REFRESH = 1.0
#: Each row: its name, what it draws from `Columns`, the value set drawn as a line (or None).
ROWS: tuple[tuple[str, str, str | None], ...] = (
    ("Rate", "rate", "rate_set"),
    ("Delay", "delay", "latency_set"),
    ("Drops", "drops", None),
)


def compact_count(per_second: float) -> str:
    """`5/s`, `2k/s`, `1M/s`: a drops scale's top in a few characters."""
    for factor, unit in ((1e6, "M"), (1e3, "k")):
        if per_second >= factor:
            return f"{per_second / factor:.3g}{unit}/s"
    return f"{per_second:.3g}/s"


def scale_text(name: str, top: float) -> str:
    return {"Rate": compact_rate, "Delay": compact_ms}.get(name, compact_count)(top)


def figure_text(name: str, value: float) -> str:
    if name == "Rate":
        return format_rate(value)
    return f"{compact_ms(value)}" if name == "Delay" else compact_count(value)


class _Axis(Widget):
    DEFAULT_CSS = """
    _Axis {
        width: 1fr;
        height: 1;
        margin: 0 1 0 0;
        color: $text-muted;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.span = 0.0
        self.changes: list[int] = []

    def render(self) -> Text:
        width = self.size.width
        if self.span <= 0 or width <= 0:
            return Text("")
        return Text(axis_line(width, self.span / width, self.span), no_wrap=True)


class _Marks(_Axis):
    """The row over the time axis with a `▴` under each column where the spec changed: a
    row of its own, so a mark never covers a tick's label; shown only while a change is in
    view (no empty row)."""

    def render(self) -> Text:
        width = self.size.width
        line = [" "] * max(0, width)
        for cell in {column // 2 for column in self.changes if 0 <= column // 2 < width}:
            line[cell] = "▴"
        return Text("".join(line), no_wrap=True)


class DirectionHistory(Vertical):
    """One direction: a row a figure (label with the scale's top, graph, latest value) and
    the time axis."""

    DEFAULT_CSS = """
    DirectionHistory {
        height: 1fr;
        border: round $primary;
        border-title-style: bold;
        padding: 0 1;
    }
    DirectionHistory > Horizontal {
        height: 1fr;
        min-height: 1;
    }
    DirectionHistory > .axis-row {
        height: 1;
    }
    DirectionHistory .history-label {
        width: 11;
        color: $text-muted;
    }
    DirectionHistory ScaledGraph {
        height: 1fr;
        margin: 0 1 0 0;
    }
    DirectionHistory .history-figure {
        width: 12;
        text-align: right;
    }
    """

    def __init__(self, direction: Direction) -> None:
        super().__init__(id=f"history-{direction}")
        self.direction: Direction = direction
        self.border_title = TITLES[direction]
        self.graphs = {name: ScaledGraph([]) for name, _, _ in ROWS}
        self.labels = {name: Label(name, classes="history-label") for name, _, _ in ROWS}
        self.figures = {name: Label("", classes="history-figure") for name, _, _ in ROWS}
        self.axis = _Axis()
        self.marks = _Marks()
        self.marks_row = Horizontal(classes="axis-row marks-row")

    def compose(self) -> ComposeResult:
        for name, _, _ in ROWS:
            with Horizontal():
                yield self.labels[name]
                yield self.graphs[name]
                yield self.figures[name]
        with self.marks_row:
            yield Label("Changed", classes="history-label")
            yield self.marks
            yield Label("", classes="history-figure")
        with Horizontal(classes="axis-row"):
            yield Label("", classes="history-label")
            yield self.axis
            yield Label("", classes="history-figure")

    def show(self, history: History) -> None:
        width = self.graphs["Rate"].size.width
        data = columns(list(history.stats), list(history.steps), self.direction, 2 * width)
        for name, measured, set_name in ROWS:
            self._show_row(name, data, measured, set_name)
        self.axis.span, self.marks.changes = data.span, data.changes
        self.axis.refresh()
        self.marks.refresh()

    def _show_row(self, name: str, data: Columns, measured: str, set_name: str | None) -> None:
        values: list[float] = getattr(data, measured)
        line: list[float] = getattr(data, set_name) if set_name else []
        least = 1.0 if name != "Rate" else 1000.0
        top = clipped_top(values, [v for v in line if v > 0], least)
        graph = self.graphs[name]
        graph.samples, graph.line, graph.ceiling = values, line, top
        graph.refresh()
        room = 10 - len(name)
        self.labels[name].update(f"{name} {scale_text(name, top)[:room]:>{room}}")
        self.figures[name].update(figure_text(name, values[-1]) if values else "-")


class HistoryScreen(Screen[None]):
    DEFAULT_CSS = """
    HistoryScreen > .history-head {
        height: auto;  /* wraps at 80 columns rather than being cut */
        background: $panel;
        padding: 0 1;
        color: $text-muted;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,g", "close", "Close", tooltip="Close the history"),
    ]

    def __init__(self, history: History) -> None:
        super().__init__()
        self.history = history
        self.head = Static("", classes="history-head")
        self.directions = [DirectionHistory(d) for d in DIRECTIONS]

    def compose(self) -> ComposeResult:
        yield self.head
        yield from self.directions
        yield KeyFooter()

    def on_mount(self) -> None:
        self.set_interval(REFRESH, self.draw)
        self.call_after_refresh(self.draw)

    def on_resize(self) -> None:
        self.call_after_refresh(self._share_rows)

    def _share_rows(self) -> None:
        """The rows shared between the directions, an odd one to the first (left blank, it
        was an empty row above the footer at 80x24 and 120x40)."""
        footer = self.query_one(KeyFooter).outer_size.height
        rows = max(2, self.size.height - self.head.outer_size.height - footer)
        for n, direction in enumerate(self.directions):
            height = rows // 2 + (rows % 2 if n == 0 else 0)
            if direction.styles.height != Scalar.from_number(height):
                direction.styles.height = height

    def draw(self) -> None:
        stats = self.history.stats
        span = stats[-1].at - stats[0].at if stats else 0.0
        self.head.update(
            f"History, the last {span:.0f} s: measured (bars) against set (dots) · scales "
            f"clip at the {CLIP_PERCENTILE}th percentile, what goes over in the warning "
            "colour · ▴ a change"
            if stats
            else "No stats yet: the history starts when the engine reports."
        )
        self.call_after_refresh(self._share_rows)  # the head may wrap to another row
        for direction in self.directions:
            direction.show(self.history)
        # Both directions show the `Changed` row if either has a change in view, so that
        # their graphs keep the same rows (one direction's alone took a row from its graphs).
        changed = any(direction.marks.changes for direction in self.directions)
        for direction in self.directions:
            if direction.marks_row.display != changed:
                direction.marks_row.display = changed

    def action_close(self) -> None:
        self.dismiss(None)
