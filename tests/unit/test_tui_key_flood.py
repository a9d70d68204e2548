"""A flood of keys neither freezes the TUI nor holds quitting back (session 22 attack F6):
5,000 arrow keys took 74 s to go through, and `q` and Ctrl+Q waited behind them all."""

from __future__ import annotations

import asyncio
import time

from textual import events

from shaper_tui.key_order import MAX_HELD_KEYS
from tests.tui_helpers import record_notifications
from tests.unit.test_tui_snapshots import app_and_ready

FLOOD = 3000
#: How long quitting may take behind the flood (the keys let in before it count too).
QUIT_WITHIN = 5.0


def flood_then(last: str) -> tuple[float, int, list[str]]:
    """Seconds from `last` to the app's end, the most keys held, and the toasts."""

    async def scenario() -> tuple[float, int, list[str]]:
        app, ready = app_and_ready()
        toasts: list[str] = []
        most = 0
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            record_notifications(app, toasts)
            for n in range(FLOOD):
                app.post_message(events.Key("down" if n % 2 else "up", None))
            await pilot.pause(0.5)
            most = len(app._held_keys)
            start = time.monotonic()
            app.post_message(events.Key(last, None))
            while app.is_running and time.monotonic() < start + 60:
                await asyncio.sleep(0.05)
            took = time.monotonic() - start
        return took, most, toasts

    return asyncio.run(scenario())


def test_ctrl_q_quits_at_once_behind_a_flood_and_the_flood_is_bounded() -> None:
    took, most, _ = flood_then("ctrl+q")
    assert took < QUIT_WITHIN, f"Ctrl+Q behind {FLOOD} keys quit after {took:.1f} s"
    assert most <= MAX_HELD_KEYS, most


def test_q_on_the_main_screen_quits_at_once_behind_a_flood() -> None:
    took, _, _ = flood_then("q")
    assert took < QUIT_WITHIN, f"q behind {FLOOD} keys quit after {took:.1f} s"


def test_the_keys_over_the_bound_are_dropped_and_said_once() -> None:
    async def scenario() -> tuple[bool, list[str]]:
        app, ready = app_and_ready()
        toasts: list[str] = []
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            record_notifications(app, toasts)
            for n in range(FLOOD):
                app.post_message(events.Key("down" if n % 2 else "up", None))
            await pilot.pause(0.5)
            until = time.monotonic() + 60
            while app.keys_waiting and time.monotonic() < until:
                await asyncio.sleep(0.1)
            await pilot.pause(0.2)
            return app.keys_waiting, toasts

    waiting, toasts = asyncio.run(scenario())
    assert not waiting, "the held keys were not through within 60 s"
    said = [t for t in toasts if "keys dropped" in t]
    assert len(said) == 1, toasts
