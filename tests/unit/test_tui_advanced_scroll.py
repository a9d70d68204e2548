"""New-user report 35b, item 6: at 80x24, `a`, ten `j` in the upload and `a` again left the
Upload panel's controls scrolled to `Loss mode` (its Rate and Loss hidden). Once `a` closes
the advanced settings every panel shows its controls from the top, and the focused control
is always in view."""

from __future__ import annotations

import asyncio

from textual.widget import Widget

from shaper_tui.widgets.direction_panel import ControlsScroll
from tests.unit.test_tui_snapshots import app_and_ready


def in_view(widget: Widget) -> bool:
    scroll = next(a for a in widget.ancestors if isinstance(a, ControlsScroll))
    return widget.region.height > 0 and scroll.region.contains_region(widget.region)


def test_closing_advanced_settings_shows_every_panel_from_the_top() -> None:
    async def scenario() -> None:
        app, ready = app_and_ready()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            app.query_one("#egress-rate").focus()
            await pilot.press("a")
            for _ in range(16):
                await pilot.press("j")
                await pilot.pause()
                assert app.focused is not None and in_view(app.focused), app.focused
            assert app.focused is not None and app.focused.id == "egress-outage_for"
            await pilot.press("a")
            await pilot.pause(0.3)
            assert app.focused is not None and in_view(app.focused), app.focused
            for panel in app.panels.values():
                assert panel.query_one(ControlsScroll).scroll_y == 0, panel.id
                assert in_view(panel.controls["rate"]), panel.id
            # Back in the basic ones at the foot of the upload: in view, as it moves.
            for _ in range(3):
                await pilot.press("k")
                await pilot.pause()
                assert app.focused is not None and in_view(app.focused), app.focused

    asyncio.run(scenario())
