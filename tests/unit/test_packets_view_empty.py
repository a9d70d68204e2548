"""New-user report 35b, item 4: a fate filter that matches nothing left the list empty and
the layers pane still showing the frame picked before; it says the list is empty now."""

from __future__ import annotations

import asyncio

from textual.widgets._footer import FooterKey

from shaper_tui.screens.packets import PacketsScreen, layers_of
from tests.unit.test_packets_view import Host, MovingFeed


def test_a_filter_that_matches_nothing_says_so_in_the_layers_pane() -> None:
    feed = MovingFeed()  # loss and forwarded frames only
    feed.move_on()

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            await pilot.press("down")
            await pilot.pause()
            assert "###[ IP ]###" in str(screen.detail.render())
            await pilot.press("4")  # burst loss: none in the feed
            await pilot.pause()
            assert screen.fate == "burst loss" and screen.table.row_count == 0
            assert str(screen.detail.render()) == "no packets match both, burst loss yet"
            await pilot.press("5")  # queue full: none either, and said so
            await pilot.pause()
            assert str(screen.detail.render()) == "no packets match both, queue full yet"
            await pilot.press("0")  # all again: the newest frame's layers
            await pilot.pause()
            newest = max(feed.frames, key=lambda f: f.record.arrival)
            assert str(screen.detail.render()) == layers_of(newest)

    asyncio.run(scenario())


def layer_keys(screen: PacketsScreen) -> list[str]:
    """The J/K keys the footer shows now (as drawn, not as the bindings would be)."""
    return [key.key_display for key in screen.query(FooterKey)
            if key.action.startswith("detail")]  # fmt: skip


def test_layer_keys_are_offered_only_with_a_frame_shown() -> None:
    """Issue 35 (s23 item 4): with a filter matching nothing the footer still offered
    `J Layers ↓ K Layers ↑`, which did nothing; they come back with a frame."""
    feed = MovingFeed()
    feed.move_on()

    async def scenario() -> None:
        app = Host(feed)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            await pilot.press("down")
            await pilot.pause(0.2)
            assert layer_keys(screen), "J/K not offered with a frame's layers taller than the pane"
            await pilot.press("4")  # burst loss: none in the feed
            await pilot.pause(0.2)
            assert screen.table.row_count == 0
            assert not layer_keys(screen), f"offered with no frame: {layer_keys(screen)}"
            await pilot.press("0")
            await pilot.pause(0.2)
            assert layer_keys(screen), "J/K not offered again with a frame"

    asyncio.run(scenario())
