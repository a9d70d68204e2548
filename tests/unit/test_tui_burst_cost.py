"""What a burst of keys costs the TUI (issue 35: back to steady within 1 s after 120 keys).
Textual restyled a control (its CSS and its component classes) on every focus change: 240
restyles for 120 `j`/`k` presses, most of the CPU the burst cost. Now a control is restyled
once a frame however often focus came and went (widgets/lazy_focus.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from textual import events
from textual.dom import DOMNode

from tests.unit.test_tui_snapshots import app_and_ready

KEYS = 120
#: Restyles the burst may cost: a few frames' worth (before: two a key, 240).
ALLOWED_RESTYLES = 20


def test_a_burst_of_moves_restyles_once_a_frame() -> None:
    app, ready = app_and_ready()
    restyles = 0
    focused = ""

    async def scenario() -> None:
        nonlocal restyles, focused
        async with app.run_test(size=(200, 60)) as pilot:
            await ready(pilot)
            await pilot.pause(0.3)
            update_styles = app.update_styles

            def counted(node: DOMNode, animate: bool = True) -> Any:
                nonlocal restyles
                restyles += 1
                return update_styles(node, animate=animate)

            app.update_styles = counted  # type: ignore[method-assign]
            for i in range(KEYS):  # all queued at once, as a burst reaches the app
                key = "j" if i % 2 == 0 else "k"
                app.post_message(events.Key(key, key))
            await pilot.pause(1.0)
            app.update_styles = update_styles  # type: ignore[method-assign]
            focused = str(app.focused.id if app.focused else None)

    asyncio.run(scenario())
    assert focused == "ingress-rate", f"{KEYS} moves, back and forth, left focus on {focused}"
    assert restyles <= ALLOWED_RESTYLES, f"{restyles} restyles for {KEYS} focus moves"
