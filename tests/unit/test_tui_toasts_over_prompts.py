"""Toasts never cover an open prompt's frame (issue 35, s23 item 5): at 80x24 `r` then `t`
drew the `Recording to …` toast over the replay file prompt. The real app on a scripted
engine: the toasts on screen when the prompt opens, and those asked for while it is open, are
held and shown once it closes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.screen import Screen
from textual.widgets._toast import Toast, ToastRack

from shaper_tui.app import create_app
from shaper_tui.screens.path_prompt import PathPrompt
from tests.scripted_engine import ScriptedEngine
from tests.tui_helpers import wait_until
from tests.unit.test_tui_snapshots import SPEC


def toasts(screen: Screen[object]) -> list[Toast]:
    """The toasts drawn on `screen` (its rack is not found by a query of the screen)."""
    return list(screen.get_child_by_type(ToastRack).query(Toast))


def test_no_toast_over_an_open_prompt(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = create_app(ScriptedEngine(SPEC, 4), tag="tui:test", record_dir=str(tmp_path))
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await wait_until(pilot, lambda: app.link.attached, 10, "attached")
            await pilot.press("r")  # `Recording to …`, then the prompt at once
            await pilot.press("t")
            await wait_until(pilot, lambda: isinstance(app.screen, PathPrompt), 5, "prompt")
            app.notify("Asked while the prompt is open", timeout=10)
            await pilot.pause(0.3)
            frame = app.screen.query_one("Vertical").region
            over = [t for t in toasts(app.screen) if t.region.overlaps(frame)]
            assert not over, f"{len(over)} toasts over the prompt's frame {frame}"
            await pilot.press("escape")
            await wait_until(pilot, lambda: not isinstance(app.screen, PathPrompt), 5, "closed")
            await pilot.pause(0.3)
            assert len(toasts(app.screen)) == 2, "the held toasts not shown after the prompt"

    asyncio.run(scenario())
