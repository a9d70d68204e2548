"""Words from the user, a file or the network are shown as typed, never read as markup
(session 22 attack F1, F2, F12, F7): a typed `5[/]`, a path with `[/]` in it and a frame whose
scapy summary holds `[/]` each raised `MarkupError` and took the TUI down, and
`[@click=app.quit]` would have planted an action."""

from __future__ import annotations

import asyncio

from rich.text import Text
from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptDNSSL, IPv6
from scapy.layers.l2 import Ether
from textual.content import Content
from textual.widgets import DataTable, Input, Label

from engine.model.fates import FORWARDED, FateRecord
from shaper_tui.packet_feed import SeenFrame
from shaper_tui.screens.packets import PacketsScreen
from shaper_tui.screens.path_prompt import PathPrompt
from shaper_tui.screens.value_prompt import ValuePrompt
from tests.unit.test_packets_view import Host
from tests.unit.test_tui_snapshots import app_and_ready

TYPED = ("5[/]", "[@click=app.quit]x[/]", "5[red]x", "[link=http://x]L[/link]")


def error_text(label: Label) -> str:
    shown = label.render()
    return str(shown.plain if isinstance(shown, Text) else shown)


def test_a_typed_value_with_markup_is_shown_as_typed() -> None:
    async def scenario() -> list[str]:
        app, ready = app_and_ready()
        seen = []
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await pilot.press("down", "down", "down", "enter")  # Latency
            for typed in TYPED:
                assert isinstance(app.screen, ValuePrompt)
                app.screen.query_one(Input).value = typed
                await pilot.press("enter")
                await pilot.pause(0.1)
                seen.append(error_text(app.screen.query_one("#error", Label)))
            assert app.is_running
        return seen

    for typed, shown in zip(TYPED, asyncio.run(scenario()), strict=True):
        assert typed[:15] in shown, (typed, shown)  # a long echo is cut with …


def test_a_path_with_markup_is_shown_as_typed() -> None:
    path = "/nonexistent-fe/[/]x[@click=app.quit]y[/].jsonl"

    async def scenario() -> str:
        app, ready = app_and_ready()
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await pilot.press("t")
            await pilot.pause(0.1)
            assert isinstance(app.screen, PathPrompt)
            app.screen.query_one(Input).value = path
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert app.is_running
            return error_text(app.screen.query_one("#error", Label))

    shown = asyncio.run(scenario())
    assert path in shown, shown


class OneFrameFeed:
    """The feed the packets view reads, holding one frame as the engine hands it on."""

    lost = 0
    error = "capture: [/]gone[@click=app.quit]x"

    def __init__(self, frame: SeenFrame) -> None:
        self.frames = [frame]

    def latest(self) -> list[SeenFrame]:
        return list(self.frames)

    def read(self) -> None:
        pass

    def stop(self) -> None:
        pass


def test_a_frame_whose_summary_holds_markup_is_listed_as_it_is() -> None:
    """An IPv6 Router Advertisement whose DNS search list names `[/]x.` (the repro's frame)."""
    packet = (Ether(dst="33:33:00:00:00:01") / IPv6(src="fe80::1", dst="ff02::1")
              / ICMPv6ND_RA(routerlifetime=0)
              / ICMPv6NDOptDNSSL(searchlist=["[/]x."], lifetime=0))  # fmt: skip
    raw = bytes(packet)
    record = FateRecord(1_700_000_000.0, FORWARDED, 0.0, 0.0, "default", len(raw), raw)
    feed = OneFrameFeed(SeenFrame("ingress", record, 1))

    async def scenario() -> tuple[str, str]:
        app = Host(feed)  # type: ignore[arg-type]
        async with app.run_test(size=(200, 40)) as pilot:
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            table = screen.query_one(DataTable)
            cell = table.get_row_at(0)[-1]
            assert app.is_running
            return str(cell), error_text(screen.filters)

    summary, filters = asyncio.run(scenario())
    assert "[/]x." in summary, summary
    assert feed.error in filters, filters


def test_textuals_own_quit_hint_renders_its_bold() -> None:
    async def scenario() -> str:
        app, ready = app_and_ready()
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            app.action_help_quit()  # what Ctrl+C runs
            await pilot.pause(0.3)
            # The toast's words are read as markup where the notification says so.
            toasts = [Content.from_markup(n.message).plain for n in app._notifications if n.markup]
            return "\n".join(toasts)

    shown = asyncio.run(scenario())
    assert "to quit the app" in shown, shown
    assert "[b]" not in shown, shown
