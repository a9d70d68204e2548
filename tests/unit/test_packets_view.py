"""The packets view pairs each fate with its own packet and lists both directions in the order
the frames arrived (issue 35, item 1: a client's ACK was shown as a 1514-byte download loss,
because summaries were cached by `id(record)`, which Python hands out again once the feed's
deque lets a record go; and each direction's batch was listed after the other's)."""

from __future__ import annotations

import asyncio

from textual.app import App
from textual.widgets import OptionList

from engine.model.fates import (
    CE_MARKED,
    CORRUPTED,
    CORRUPTED_BIT_SHIFT,
    DUPLICATED,
    FATE_NAMES,
    FORWARDED,
    LOSS,
    REORDERED,
    FateRecord,
)
from shaper_tui.packet_feed import SeenFrame
from shaper_tui.screens.fate_picker import FatePicker
from shaper_tui.screens.packets import REFRESH, PacketsScreen, layers_of, summary_of
from tests.frames_helpers import tcp_frame, udp_frame

#: How many times the feed's window moves on: each time its old records are let go.
ROUNDS = 40
WINDOW = 8


class MovingFeed:
    """A feed whose window moves on, as the real one's deque does: the records it lets go are
    freed, and new ones take their place (and, in CPython, often their ids)."""

    lost = 0
    error = ""

    def __init__(self) -> None:
        self.frames: list[SeenFrame] = []
        self.count = 0

    def move_on(self) -> None:
        self.frames = []
        for _ in range(WINDOW):
            n = self.count
            self.count += 1
            down = n % 2 == 0
            frame = (udp_frame(src="198.18.0.2", dst="198.18.0.1", sport=1000 + n, size=1400)
                     if down else tcp_frame(sport=2000 + n, size=10))  # fmt: skip
            record = FateRecord(1_700_000_000.0 + n / 100, LOSS if down else FORWARDED, 0.0,
                                0.0, "default", len(frame) - 10, frame[10:106])  # fmt: skip
            self.frames.append(SeenFrame("ingress" if down else "egress", record, n))
        # One direction's batch, then the other's, as the engine's messages come.
        self.frames.sort(key=lambda f: f.direction)

    def latest(self) -> list[SeenFrame]:
        return list(self.frames)

    def read(self) -> None:
        pass  # the test moves the window on itself

    def stop(self) -> None:
        pass


class Host(App[None]):
    def __init__(self, feed: MovingFeed) -> None:
        super().__init__()
        self.feed = feed

    def on_mount(self) -> None:
        self.push_screen(PacketsScreen(self.feed))  # type: ignore[arg-type]


def test_every_row_shows_its_own_packet_and_rows_are_in_time_order() -> None:
    feed = MovingFeed()

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            for _ in range(ROUNDS):
                feed.move_on()
                screen.refresh_rows()
                newest_first = sorted(feed.frames, key=lambda f: f.record.arrival, reverse=True)
                rows = [screen.table.get_row_at(i) for i in range(screen.table.row_count)]
                assert [str(row[4]) for row in rows] == [summary_of(f) for f in newest_first]
                assert [row[3] for row in rows] == [str(f.record.length) for f in newest_first]

    asyncio.run(scenario())


def test_the_selected_packet_is_taken_apart_under_the_list() -> None:
    """Issue 35, item 1: the highlighted row's frame, layer by layer (scapy's `show`), and it
    stays the one shown while newer rows come in above it."""
    feed = MovingFeed()
    feed.move_on()

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            await pilot.press("down", "down")
            await pilot.pause()
            chosen = sorted(feed.frames, key=lambda f: f.record.arrival, reverse=True)[2]
            shown = str(screen.detail.render())
            assert shown == layers_of(chosen)
            assert "###[ IP ]###" in shown and "198.18.0." in shown
            feed.frames.append(SeenFrame("egress", chosen.record, feed.count + 99))
            screen.refresh_rows()
            await pilot.pause()
            assert str(screen.detail.render()) == shown
            assert screen.table.cursor_row == 3  # moved down with its frame

    asyncio.run(scenario())


def test_s_picks_a_fate_from_a_list_and_digits_pick_one_directly() -> None:
    """Issue 35, item 16: `s` stepped through ten filters one at a time."""
    feed = MovingFeed()
    feed.move_on()

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.pause()
            shown = app.screen
            assert isinstance(shown, PacketsScreen)
            screen: PacketsScreen = shown
            await pilot.press("s")
            assert isinstance(app.screen, FatePicker)
            await pilot.press("down", "down", "down", "enter")  # all, dropped, forwarded, loss
            await pilot.pause()
            assert app.screen_stack[-1] is screen and screen.fate == "loss"
            fates = {str(screen.table.get_row_at(i)[2]) for i in range(screen.table.row_count)}
            assert fates == {"loss"}
            await pilot.press("2")
            assert screen.fate == "forwarded"
            await pilot.press("0")
            assert screen.fate == "all"
            await pilot.press("s", "3")  # a digit in the list picks too (it did nothing)
            await pilot.pause()
            assert app.screen_stack[-1] is screen and screen.fate == "loss"

    asyncio.run(scenario())


class EveryFateFeed(MovingFeed):
    """One frame of each fate the engine can give (engine.model.fates.FATE_NAMES)."""

    def __init__(self) -> None:
        super().__init__()
        frame = udp_frame(src="198.18.0.2", dst="198.18.0.1", size=200)
        for fate in range(len(FATE_NAMES)):
            record = FateRecord(1_700_000_000.0 + fate, fate, 0.0, 0.0, "default",
                                len(frame) - 10, frame[10:106])  # fmt: skip
            self.frames.append(SeenFrame("ingress", record, fate))


def test_every_fate_the_engine_gives_can_be_picked_from_the_list() -> None:
    """Issue 35 (s22): the list lacked `aqm` and `outage` (a hand-kept copy of the names):
    each fate the engine can give is in it, and picking it shows that fate's frame alone."""
    feed = EveryFateFeed()

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            shown = app.screen
            assert isinstance(shown, PacketsScreen)
            screen: PacketsScreen = shown
            for name in FATE_NAMES:
                await pilot.press("s")
                picker = app.screen
                assert isinstance(picker, FatePicker)
                options = picker.query_one(OptionList)
                ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
                assert name in ids, f"{name} is not in the list: {ids}"
                await pilot.press("home", *["down"] * ids.index(name), "enter")
                await pilot.pause()
                assert app.screen is screen and screen.fate == name
                rows = [screen.table.get_row_at(i) for i in range(screen.table.row_count)]
                assert len(rows) == 1, (name, rows)

    asyncio.run(scenario())


def test_the_layers_scroll_by_keys_when_taller_than_their_pane() -> None:
    """Issue 35 (s22): at 80x24 a TCP frame's layers (some 40 lines) showed only their top,
    and no key scrolled them: J (shift+down) and K do, and the footer says so then."""
    feed = MovingFeed()
    feed.move_on()

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            await pilot.press("down")  # the newest is a TCP frame: the second one
            await pilot.pause()
            pane = screen.query_one(".packets-detail")
            lines = len(str(screen.detail.render()).splitlines())
            assert lines > pane.scrollable_content_region.height  # it must scroll to be read
            assert "J" in app.active_bindings  # said in the footer
            for _ in range(lines):  # bounded: a line or more a press
                await pilot.press("J")
            await pilot.pause()
            bottom = pane.scroll_y + pane.scrollable_content_region.height
            assert pane.scroll_y > 0 and bottom >= lines, (pane.scroll_y, bottom, lines)
            await asyncio.sleep(3 * REFRESH)  # the list is rebuilt meanwhile: it stays put
            assert pane.scroll_y + pane.scrollable_content_region.height >= lines
            assert screen.table.cursor_row == 1  # the list's cursor stayed
            for _ in range(lines):
                await pilot.press("K")
            await pilot.pause()
            assert pane.scroll_y == 0

    asyncio.run(scenario())


def test_j_and_k_move_the_layers_one_layer_at_a_time() -> None:
    """Issue 35 (s23): J scrolled the layers 3 lines, which is no layer's length (an IP
    header is 14): each J brings the next layer's `###[ … ]###` line to the top of the pane
    (or, for the last ones, scrolls to the end, the line in view), each K the one before."""
    feed = MovingFeed()
    feed.move_on()

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            await pilot.press("down")
            await pilot.pause()
            pane = screen.query_one(".packets-detail")
            lines = str(screen.detail.render()).splitlines()  # no line wraps at 80 columns
            heads = [n for n, line in enumerate(lines) if line.startswith("###[")]
            assert len(heads) >= 3 and heads[1] < pane.max_scroll_y < heads[2], heads
            await pilot.press("J")
            await pilot.pause()
            assert pane.scroll_y == heads[1], (lines[int(pane.scroll_y)], lines[heads[1]])
            await pilot.press("J")  # the next layer cannot come to the top: the end of them
            await pilot.pause()
            assert pane.scroll_y == pane.max_scroll_y
            await pilot.press("K")
            await pilot.pause()
            assert pane.scroll_y == heads[1], lines[int(pane.scroll_y)]
            await pilot.press("K")
            await pilot.pause()
            assert pane.scroll_y == 0  # the first layer with the frame's length above it


class MarkedFeed(MovingFeed):
    """Frames a link forwarded plain, copied, corrupted, reordered and marked CE, and one
    lost that was a copy."""

    MARKS = (0, DUPLICATED, CORRUPTED | 345 << CORRUPTED_BIT_SHIFT, REORDERED, CE_MARKED)

    def __init__(self) -> None:
        super().__init__()
        frame = udp_frame(src="198.18.0.2", dst="198.18.0.1", size=200)
        for n, marks in enumerate(self.MARKS):
            record = FateRecord(1_700_000_000.0 + n, FORWARDED, 0.0125, 0.0, "default",
                                len(frame) - 10, frame[10:106], marks)  # fmt: skip
            self.frames.append(SeenFrame("ingress", record, n))
        record = FateRecord(1_700_000_009.0, LOSS, 0.0, 0.0, "default", len(frame) - 10,
                            frame[10:106], DUPLICATED)  # fmt: skip
        self.frames.append(SeenFrame("ingress", record, 9))


def test_each_mark_is_told_in_its_row_and_layers_and_can_be_picked() -> None:
    """Issue 36, item 3: a duplicated, corrupted (which bit), reordered or CE-marked frame
    showed as forwarded alone. Each says so in the fate column and the layers pane, and each
    mark is in the fate filter's list, picking the frames that carry it."""
    feed = MarkedFeed()
    expect = {"duplicated": ([9, 1], ["loss dup", "+12.5 ms dup"]),
              "corrupted": ([2], ["+12.5 ms bit 345 flipped"]),
              "reordered": ([3], ["+12.5 ms reordered"]),
              "CE-marked": ([4], ["+12.5 ms CE"])}  # fmt: skip

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            for name, (numbers, fates) in expect.items():
                await pilot.press("s")
                picker = app.screen
                assert isinstance(picker, FatePicker)
                options = picker.query_one(OptionList)
                ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
                await pilot.press("home", *["down"] * ids.index(name), "enter")
                await pilot.pause()
                assert screen.fate == name
                table = screen.table
                rows = [table.get_row_at(i) for i in range(table.row_count)]
                assert [str(row[2]) for row in rows] == fates, name
                assert [int(str(k.value)) for k in table.rows] == numbers
            assert "impaired: corrupted bit 345 (byte 43, 0x02)" in layers_of(feed.frames[2])

    asyncio.run(scenario())
