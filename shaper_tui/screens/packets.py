"""The packets view: the latest frames the links dropped or delayed, one line each (scapy's
summary: addresses, protocol, ports, TCP flags) with their fate, live, filtered by direction
and by fate (picked from a list, or by its digit); under them, the selected frame taken apart
layer by layer. It runs a capture (packet_feed.py) only while it is open."""

from __future__ import annotations

import time
from collections import deque
from typing import ClassVar

import scapy.layers.inet
import scapy.layers.inet6  # noqa: F401 - and IPv6
from rich.text import Text
from scapy.layers.l2 import Ether
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable

from engine.model.fates import (
    CE_MARKED,
    CORRUPTED,
    DUPLICATED,
    FATE_NAMES,
    FORWARDED,
    HELD,
    INJECTED,
    MARKS,
    REORDERED,
    corrupted_bit,
    mark_words,
)
from shaper_tui.packet_feed import PacketFeed, SeenFrame
from shaper_tui.screens.fate_picker import FatePicker
from shaper_tui.widgets.key_footer import KeyFooter
from shaper_tui.widgets.plain import PlainLabel, PlainStatic

#: Rows kept in the list while paused (to scroll back through); while it runs, only the rows
#: the list shows are built (each new one costs a scapy summary, about half a millisecond).
ROWS = 200
#: The "not seen" count covers this many seconds (it goes once the view keeps up again).
LOST_WINDOW = 10.0
REFRESH = 0.5
#: How scapy's layer-by-layer view starts each layer's lines: J and K go from one to the next.
LAYER_HEAD = "###["
DIRECTIONS = ("both", "download", "upload")
#: The feed's direction a filter word stands for (the panels say Download and Upload).
FEED_DIRECTIONS = {"download": "ingress", "upload": "egress"}
#: What the fate filter picks from: all, every drop, then each fate the engine can give, then
#: each mark (what else a link did to a frame), as the engine names them (engine.model.fates:
#: a fate or mark it adds is pickable here at once).
FATES = ("all", "dropped", FATE_NAMES[FORWARDED],
         *(name for fate, name in enumerate(FATE_NAMES) if fate != FORWARDED),
         *(name for _, name, _ in MARKS))  # fmt: skip
#: Each mark's flag by its name in FATES.
MARK_FLAGS = {name: flag for flag, name, _ in MARKS}
#: Each mark as the fate column says it, short (the layers pane says it whole).
SHORT_MARKS = ((DUPLICATED, "dup"), (REORDERED, "reordered"), (CE_MARKED, "CE"), (HELD, "held"),
               (INJECTED, "injected"))  # fmt: skip
#: The fates a digit picks directly (the first ten of the list; the rest from the list).
DIGIT_FATES = FATES[:10]
ARROWS = {"ingress": "↓", "egress": "↑"}


def summary_of(frame: SeenFrame) -> str:
    """scapy's one-line summary of the frame's head (never raises)."""
    try:
        return short_summary(str(Ether(frame.record.head).summary()))
    except Exception:  # a head scapy cannot take apart
        return f"{len(frame.record.head)} bytes"


def short_summary(summary: str) -> str:
    """Without the layers every frame has (`Ether / IP / `): at 80 columns the addresses and
    ports, the destination too, are what fits."""
    for layer in ("Ether / ", "IPv6 / ", "IP / "):
        summary = summary.removeprefix(layer)
    for layer in (" / Padding", " / Raw"):
        summary = summary.removesuffix(layer)
    return summary


def layers_of(frame: SeenFrame) -> str:
    """scapy's layer-by-layer view of the frame's head (never raises). About half a
    millisecond for a head of SNAPLEN bytes: made on the UI thread, for the selected frame
    only, once."""
    try:
        layers = str(Ether(frame.record.head).show(dump=True))
    except Exception:  # a head scapy cannot take apart
        return f"{len(frame.record.head)} bytes scapy cannot take apart"
    told = f"{frame.record.length} bytes, the first {len(frame.record.head)} kept"
    if frame.record.marks:
        told += "\nimpaired: " + ", ".join(mark_words(frame.record.marks))
    return f"{told}\n{layers}"


def fate_of(frame: SeenFrame) -> Text:
    """The delay a forwarded frame got or why it was dropped, and its marks, short."""
    record = frame.record
    if record.fate == FORWARDED:
        told = Text(f"+{record.delay * 1000:.1f} ms")
    else:
        told = Text(FATE_NAMES[record.fate], style="bold red")
    marks = record.marks
    if marks:
        words = [word for flag, word in SHORT_MARKS if marks & flag]
        if marks & CORRUPTED:
            words.append(f"bit {corrupted_bit(marks)} flipped")
        told.append(" " + " ".join(words), style="bold yellow")
    return told


def in_time_order(frame: SeenFrame) -> tuple[float, int]:
    """When it arrived, then the order the feed saw it in."""
    return frame.record.arrival, frame.number


def passes(frame: SeenFrame, direction: str, fate: str) -> bool:
    if direction != "both" and frame.direction != FEED_DIRECTIONS[direction]:
        return False
    forwarded = frame.record.fate == FORWARDED
    if fate == "all":
        return True
    if fate == "dropped":
        return not forwarded
    if fate == "forwarded":
        return forwarded
    flag = MARK_FLAGS.get(fate)
    if flag is not None:
        return bool(frame.record.marks & flag)
    return FATE_NAMES[frame.record.fate] == fate


class PacketsScreen(Screen[None]):
    DEFAULT_CSS = """
    PacketsScreen > .packets-filters {
        height: 1;
        width: 100%;
        background: $panel;
        padding: 0 1;
    }
    PacketsScreen > DataTable {
        height: 1fr;
    }
    PacketsScreen > .packets-detail {
        height: 1fr;
        max-height: 24;
        border-top: solid $primary;
        padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,v", "close", "Close", tooltip="Close the packets view"),
        Binding("d", "direction", "Direction", tooltip="Show both directions, download or upload"),
        Binding(
            "s",
            "fate",
            "Fate",
            tooltip="Pick the fates shown: all, dropped, forwarded "
            "or one cause (or its digit: 0 all, 1 dropped, 2 forwarded, 3 loss, ...)",
        ),
        *(
            Binding(str(n), f"show_fate({n})", fate, show=False)
            for n, fate in enumerate(DIGIT_FATES)
        ),
        Binding("space", "pause", "Pause", tooltip="Hold the list still"),
        Binding("space", "resume", "Resume", tooltip="Let the list run again"),
        Binding("J,shift+down", "detail(1)", "Layers ↓", key_display="J",
                tooltip="Scroll the selected packet's layers down (when they are taller "
                "than their pane)"),
        Binding("K,shift+up", "detail(-1)", "Layers ↑", key_display="K",
                tooltip="Scroll the selected packet's layers up"),
    ]  # fmt: skip

    def __init__(self, feed: PacketFeed) -> None:
        super().__init__()
        self.feed = feed
        self.direction = "both"
        self.fate = "all"
        self.paused = False
        self.filters = PlainLabel("", classes="packets-filters")
        self.table: DataTable[str | Text] = DataTable(cursor_type="row", zebra_stripes=True)
        self._summaries: dict[int, str] = {}
        #: The frames in the table by their number (the rows' keys), and the one whose
        #: layers are shown under it.
        self._shown: dict[int, SeenFrame] = {}
        self._detailed: int | None = None
        self._layers = ""
        #: What the layers pane says while no frame passes the filters.
        self._empty_note = ""
        #: (when, the feed's lost count then), for the "not seen" of the last seconds; the
        #: feed starts with the view.
        self._lost_seen: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])
        self.detail = PlainStatic("")
        #: The layers scroll within their pane (the list keeps the focus and the arrows).
        self.detail_pane = VerticalScroll(self.detail, classes="packets-detail",
                                          can_focus=False)  # fmt: skip

    def compose(self) -> ComposeResult:
        yield self.filters
        yield self.table
        yield self.detail_pane
        yield KeyFooter()

    def on_mount(self) -> None:
        self.run_worker(self.feed.read, name="packet-feed", thread=True, exit_on_error=False)
        self.table.add_columns("time", "", "fate", "bytes", "packet")
        self.set_interval(REFRESH, self.refresh_rows)
        self.refresh_rows()  # before the first frame (the table measures its columns then)

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_bindings)  # the layers may fit now, or not

    def refresh_rows(self) -> None:
        """The rows the list shows, rebuilt only when the frames in them changed: a filter
        change costs the scapy summaries of one screenful, not of every frame kept."""
        self._note_lost()
        self._show_filters()
        if self.paused:
            return
        # Both directions' records come in batches of one direction at a time: shown merged
        # in the order the frames arrived.
        passing = [f for f in self.feed.latest() if passes(f, self.direction, self.fate)]
        shown = sorted(passing, key=in_time_order)[-self._window() :]
        if [f.number for f in shown] != list(self._shown):
            self._build(shown)
        if not shown:
            self._say_empty()
        self.call_after_refresh(self._show_filters)

    def _say_empty(self) -> None:
        """No row to highlight: the layers of a frame no longer listed give way to why."""
        note = f"no packets match {self.direction}, {self.fate} yet"
        if self._detailed is not None or note != self._empty_note:
            self._detailed = None
            self._empty_note = note
            self.detail.update(note)
            self.call_after_refresh(self.refresh_bindings)  # no layers: J/K leave the footer

    def _window(self) -> int:
        """How many rows to build: what the list shows while it runs (before the first
        layout, at most the screen's height), ROWS while paused."""
        table = self.table
        height = table.scrollable_content_region.height - table.header_height
        return ROWS if self.paused else height if height > 0 else self.app.size.height

    def _build(self, shown: list[SeenFrame]) -> None:
        self.table.clear()
        self._shown = {frame.number: frame for frame in shown}
        for frame in reversed(shown):  # the newest on top
            key = frame.number
            summary = self._summaries.get(key)
            if summary is None:
                summary = self._summaries[key] = summary_of(frame)
            when = time.strftime("%H:%M:%S", time.localtime(frame.record.arrival))
            millis = f"{frame.record.arrival % 1:.3f}"[1:]
            self.table.add_row(f"{when}{millis}", ARROWS.get(frame.direction, "?"),
                               fate_of(frame), str(frame.record.length), Text(summary),
                               key=str(key))  # fmt: skip
        if self._detailed in self._shown:  # the selected frame stays selected as rows come
            row = self.table.get_row_index(str(self._detailed))
            self.table.move_cursor(row=row, animate=False, scroll=False)
        if len(self._summaries) > 4 * ROWS:  # forget what has scrolled away
            kept = {f.number for f in self.feed.latest()}
            self._summaries = {k: v for k, v in self._summaries.items() if k in kept}

    def _note_lost(self) -> None:
        """The feed's count of frames not seen, as it stood at each refresh of the last
        LOST_WINDOW seconds."""
        now = time.monotonic()
        self._lost_seen.append((now, self.feed.lost))
        seen = self._lost_seen
        while len(seen) > 1 and seen[1][0] <= now - LOST_WINDOW:  # the count as it stood
            seen.popleft()  # when the window began stays, as the base

    def lost_lately(self) -> int:
        """Frames the view missed in the last LOST_WINDOW seconds (0 once it keeps up)."""
        if not self._lost_seen:
            return 0
        return self.feed.lost - self._lost_seen[0][1]

    def _show_filters(self) -> None:
        """The filters in force, and `→` when the lines are wider than the list."""
        feed = self.feed
        state = " · paused" if self.paused else ""
        missed = self.lost_lately()
        lost = (f" · {missed} not seen in the last {LOST_WINDOW:.0f} s (the view fell behind)"
                if missed else "")  # fmt: skip
        error = f" · {feed.error}" if feed.error else ""
        table = self.table
        wider = table.virtual_size.width > table.scrollable_content_region.width
        more = "  → scrolls right" if wider else ""
        self.filters.update(f"Packets: {self.direction}, {self.fate}{state}{lost}{error}{more}")

    def action_direction(self) -> None:
        self.direction = DIRECTIONS[(DIRECTIONS.index(self.direction) + 1) % len(DIRECTIONS)]
        self.refresh_rows()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted frame's layers, made once per frame (the list moves on under it)."""
        if event.cursor_row != self.table.cursor_row:
            return  # the list was rebuilt since: its cursor is back on the frame shown
        key = event.row_key.value
        frame = self._shown.get(int(key)) if key is not None else None
        if frame is None or frame.number == self._detailed:
            return
        self._detailed = frame.number
        self._layers = layers_of(frame)
        self.detail.update(Text(self._layers))
        self.detail_pane.scroll_home(animate=False, immediate=True)
        self.call_after_refresh(self.refresh_bindings)  # J/K in the footer once it is laid out

    def detail_scrolls(self) -> bool:
        """Whether the layers are taller than their pane (then J/K scroll them)."""
        return self.detail_pane.max_scroll_y > 0

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """J/K only in the footer while a frame's layers are shown and scroll (hidden, not
        dimmed: with no frame they do nothing)."""
        if action == "detail":
            return self._detailed is not None and self.detail_scrolls()
        if action in ("pause", "resume"):  # space says what it does now
            return self.paused == (action == "resume")
        return True

    def action_detail(self, step: int) -> None:
        """The next layer (or, back, the one before) at the top of the pane, the list's cursor
        staying where it is. Above the first layer's line is the frame's length: K to the
        first layer shows it too."""
        heads = self._layer_rows()
        if not heads:
            return
        top = round(self.detail_pane.scroll_y)
        if step > 0:
            after = [row for row in heads if row > max(top, heads[0])]
            target = after[0] if after else self.detail_pane.max_scroll_y
        else:
            before = [row for row in heads if row < top]
            target = before[-1] if len(before) > 1 else 0
        self.detail_pane.scroll_to(y=target, animate=False, immediate=True)

    def _layer_rows(self) -> list[int]:
        """The rows of the pane at which each layer starts (a long line wraps to several)."""
        width = max(1, self.detail.content_region.width)
        console = self.app.console
        rows: list[int] = []
        row = 0
        for line in self._layers.splitlines():
            if line.startswith(LAYER_HEAD):
                rows.append(row)
            row += max(1, len(Text(line).wrap(console, width)))
        return rows

    def action_fate(self) -> None:
        def picked(fate: str | None) -> None:
            if fate is not None:
                self.fate = fate
                self.refresh_rows()

        self.app.push_screen(FatePicker(FATES, self.fate), picked)

    def action_show_fate(self, number: int) -> None:
        self.fate = FATES[number]
        self.refresh_rows()

    def action_pause(self) -> None:
        """Held still with ROWS rows to scroll back through (built once, here)."""
        self.refresh_rows()
        self.paused = True
        passing = [f for f in self.feed.latest() if passes(f, self.direction, self.fate)]
        self._build(sorted(passing, key=in_time_order)[-ROWS:])
        self._show_filters()
        self.refresh_bindings()

    def action_resume(self) -> None:
        self.paused = False
        self.refresh_rows()
        self.refresh_bindings()

    def action_close(self) -> None:
        self.dismiss(None)

    def on_unmount(self) -> None:
        self.feed.stop()
