"""The packets view keeps up (new-user report 22, finding 9): a fate filter took 5.4 s to show
because every refresh summarised (scapy, about half a millisecond each) and rebuilt 200 rows;
space said Pause while paused; the "not seen" count never changed; `d` said ingress/egress."""

from __future__ import annotations

import asyncio

import pytest
from textual.app import App

import shaper_tui.screens.packets as packets
from engine.model.fates import FORWARDED, LOSS, QUEUE_FULL, FateRecord
from shaper_tui.packet_feed import SeenFrame
from shaper_tui.screens.packets import PacketsScreen
from tests.frames_helpers import tcp_frame
from tests.unit.test_tui_layout import screen_lines

KEPT = 2000


class BusyFeed:
    """A full feed (as under load): a third of the frames lost, both directions."""

    error = ""

    def __init__(self) -> None:
        self.lost = 0
        self.frames = []
        for n in range(KEPT):
            frame = tcp_frame(sport=2000 + n, size=100)
            record = FateRecord(1_700_000_000.0 + n / 100, LOSS if n % 3 == 0 else FORWARDED,
                                0.001, 0.0, "default", len(frame) - 10, frame[10:106])  # fmt: skip
            self.frames.append(SeenFrame("ingress" if n % 2 else "egress", record, n))

    def latest(self) -> list[SeenFrame]:
        return list(self.frames)

    def read(self) -> None:
        pass

    def stop(self) -> None:
        pass


class Host(App[None]):
    def __init__(self, feed: BusyFeed) -> None:
        super().__init__()
        self.feed = feed

    def on_mount(self) -> None:
        self.push_screen(PacketsScreen(self.feed))  # type: ignore[arg-type]


def test_a_filter_change_summarises_one_screenful(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted scapy summaries, not wall time: a filter change makes at most the rows the
    list shows (it made 200), and the header says the filter after one frame."""
    made: list[int] = []
    real = packets.summary_of

    def counted(frame: SeenFrame) -> str:
        made.append(frame.number)
        return real(frame)

    monkeypatch.setattr(packets, "summary_of", counted)
    feed = BusyFeed()

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            screen.refresh_rows()
            await pilot.pause()
            visible = screen.table.scrollable_content_region.height
            made.clear()
            await pilot.press("1")
            await pilot.pause()
            assert str(screen.filters.render()).startswith("Packets: both, dropped")
            assert 0 < len(made) <= visible, (len(made), visible)
            fates = {str(screen.table.get_row_at(i)[2]) for i in range(screen.table.row_count)}
            assert fates == {"loss"}
            first = str(screen.table.get_row_at(0)[4])
            assert any(first in line for line in screen_lines(app)), "a row drawn cut"
            made.clear()
            screen.refresh_rows()  # nothing new: nothing rebuilt
            assert made == []

    asyncio.run(scenario())


def test_space_says_resume_while_paused_and_d_says_download() -> None:
    feed = BusyFeed()

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            shown = {b.binding.description for b in screen.active_bindings.values()}
            assert "Pause" in shown and "Resume" not in shown
            await pilot.press("space")
            await pilot.pause()
            shown = {b.binding.description for b in screen.active_bindings.values()
                     if screen.check_action(b.binding.action, ()) is not False}  # fmt: skip
            assert screen.paused and "Resume" in shown and "Pause" not in shown
            assert screen.table.row_count == packets.ROWS  # scroll back while paused
            await pilot.press("space")
            await pilot.pause()
            assert not screen.paused
            await pilot.press("d")
            await pilot.pause()
            assert str(screen.filters.render()).startswith("Packets: download, all")
            arrows = {str(screen.table.get_row_at(i)[1]) for i in range(screen.table.row_count)}
            assert arrows == {"↓"}
            await pilot.press("d")
            await pilot.pause()
            assert str(screen.filters.render()).startswith("Packets: upload, all")

    asyncio.run(scenario())


def test_the_not_seen_count_is_of_the_last_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """It said `1269 not seen` for good: now the frames missed in the last LOST_WINDOW s."""
    feed = BusyFeed()
    monkeypatch.setattr(packets, "LOST_WINDOW", 0.5)

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            feed.lost = 1269
            screen.refresh_rows()
            assert "1269 not seen in the last" in str(screen.filters.render())
            await pilot.pause(0.7)
            screen.refresh_rows()
            assert "not seen" not in str(screen.filters.render())

    asyncio.run(scenario())


class QueueFullFeed(BusyFeed):
    """Lines of 79 cells (a queue-full frame between two high ports): they fit 80 columns."""

    def __init__(self) -> None:
        super().__init__()
        frame = tcp_frame(src="198.18.0.2", dst="198.18.0.1", sport=50710, dport=45678, size=1400)
        self.frames = [
            SeenFrame("ingress", FateRecord(1_700_000_000.0 + n / 100, QUEUE_FULL, 0.0, 0.0,
                                            "default", len(frame) - 10, frame[10:106]), n)
            for n in range(KEPT)
        ]  # fmt: skip


def test_lines_that_fit_80_columns_say_no_scrolling() -> None:
    """At 80x24 the header said `→ scrolls right` and a scrollbar row showed under the list,
    though the lines fit: the list held 200 rows, so a vertical scrollbar took 2 columns."""

    async def scenario() -> None:
        app = Host(QueueFullFeed())
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            screen.refresh_rows()
            await pilot.pause()
            assert "scrolls right" not in str(screen.filters.render())
            assert not screen.table.show_horizontal_scrollbar
            assert not screen.table.show_vertical_scrollbar
            lines = screen_lines(app)
            assert any("50710 > 198.18.0.1:45678 S" in line for line in lines), lines

    asyncio.run(scenario())
