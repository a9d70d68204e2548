"""The footer follows what is open (new-user report 22, finding 10): with the command palette
or the packets view's fate picker open, it still showed the screen's keys under them (`←→ step
⏎ type p Presets b Block …`, `d Direction s Fate …`), none of which act there."""

from __future__ import annotations

import asyncio

from shaper_tui.screens.fate_picker import FatePicker
from shaper_tui.screens.packets import PacketsScreen
from tests.unit.test_packets_view import MovingFeed
from tests.unit.test_tui_layout import screen_lines
from tests.unit.test_tui_snapshots import app_and_ready


def test_the_palette_and_the_fate_picker_show_their_own_keys() -> None:
    async def scenario() -> None:
        app, ready = app_and_ready()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("ctrl+p")
            await pilot.pause(0.3)
            footer = screen_lines(app)[-1]
            assert "esc Close" in footer and "Block" not in footer, footer
            await pilot.press("escape")
            await pilot.pause(0.3)
            assert "Block" in screen_lines(app)[-1]
            feed = MovingFeed()
            feed.move_on()
            app.push_screen(PacketsScreen(feed))  # type: ignore[arg-type]
            await pilot.pause()
            await pilot.press("s")
            await pilot.pause(0.3)
            assert isinstance(app.screen, FatePicker)
            footer = screen_lines(app)[-1]
            assert "esc Cancel" in footer and "Direction" not in footer, footer
            assert "⏎ Pick" in footer, footer
            await pilot.press("down", "enter")
            await pilot.pause()
            assert isinstance(app.screen, PacketsScreen) and app.screen.fate == "dropped"

    asyncio.run(scenario())
