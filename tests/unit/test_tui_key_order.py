"""Keys typed in one burst after the key that opens a screen are that screen's (issue 35,
item 10): the app lets one key in at a time (`shaper_tui.key_order`). Before, every key of a
burst went to the control focused before the first, so `Enter 80ms Enter` on a slider lost the
digits to the slider under the prompt.

The keys are posted as the terminal driver posts them, all at once (`burst`), not one at a time
with a wait in between as `pilot.press` does: that wait hides the loss. The same bursts through
a real terminal are in tests/lab/test_tui_key_bursts.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from engine.model.spec import PASS_THROUGH
from shaper_tui.app import ShaperApp
from tests.tui_helpers import wait_until
from tests.unit.test_tui_keys import burst
from tests.unit.test_tui_snapshots import app_and_ready

Scenario = Callable[[ShaperApp, Pilot[Any]], Awaitable[None]]


def run(scenario: Scenario, focus: str = "ingress-rate") -> None:
    """`scenario` on the scripted app at 120x40, focus on the control `focus`."""
    app, ready = app_and_ready()

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            app.set_focus(app.query_one(f"#{focus}"))
            await pilot.pause()
            await scenario(app, pilot)

    asyncio.run(go())


def on_top(app: ShaperApp) -> str:
    return type(app.screen).__name__


def field_value(app: ShaperApp) -> str:
    focused = app.focused
    return focused.value if isinstance(focused, Input) else f"(focus on {focused!r})"


def test_a_value_typed_right_after_enter_on_a_slider() -> None:
    async def scenario(app: ShaperApp, pilot: Pilot[Any]) -> None:
        burst(app, "enter", "8", "0", "m", "s", "enter")
        await wait_until(pilot, lambda: app.spec.link("ingress").latency == 80, 15,
                         "80 ms typed right after Enter")  # fmt: skip
        assert on_top(app) == "Screen"

    run(scenario, focus="ingress-latency")


def test_a_digit_opens_the_prompt_and_the_rest_follow_it() -> None:
    async def scenario(app: ShaperApp, pilot: Pilot[Any]) -> None:
        burst(app, "4", "5", "m", "s", "enter")
        await wait_until(pilot, lambda: app.spec.link("ingress").latency == 45, 15,
                         "45 ms typed on the slider")  # fmt: skip

    run(scenario, focus="ingress-latency")


def test_moves_before_enter_choose_the_prompt() -> None:
    """`j j j Enter`: the third control on (Latency) gets the prompt and the value."""

    async def scenario(app: ShaperApp, pilot: Pilot[Any]) -> None:
        rate = app.spec.link("ingress").rate
        burst(app, "j", "j", "j", "enter", "6", "0", "m", "s", "enter")
        await wait_until(pilot, lambda: app.spec.link("ingress").latency == 60, 15,
                         "60 ms on the Latency three controls on")  # fmt: skip
        assert app.spec.link("ingress").rate == rate
        assert app.focused is not None and app.focused.id == "ingress-latency"

    run(scenario)


def test_presets_filter_and_enter_typed_ahead() -> None:
    async def scenario(app: ShaperApp, pilot: Pilot[Any]) -> None:
        burst(app, "p", "f", "i", "o", "s", "enter", "j")
        await wait_until(pilot, lambda: app.spec.link("ingress").rate == 20_000_000, 15,
                         "the WPT FIOS preset")  # fmt: skip
        await wait_until(pilot, lambda: app.focused is not None
                         and app.focused.id == "ingress-loss", 15,
                         "j after the preset moving on from the rate")  # fmt: skip

    run(scenario)


def test_a_question_answered_in_the_same_burst() -> None:
    """`R y Enter 3mbit Enter`: reset asks, y answers, the rate's prompt gets its value."""

    async def scenario(app: ShaperApp, pilot: Pilot[Any]) -> None:
        burst(app, "R", "y", "enter", "3", "m", "b", "i", "t", "enter")
        await wait_until(pilot, lambda: app.spec.link("ingress").rate == 3_000_000, 15,
                         "3 Mbit/s after the reset")  # fmt: skip
        assert app.spec.link("egress") == PASS_THROUGH.link("egress")

    run(scenario)


def test_help_search_typed_ahead() -> None:
    async def scenario(app: ShaperApp, pilot: Pilot[Any]) -> None:
        burst(app, "question_mark", "slash", "l", "o", "s", "s")
        await wait_until(pilot, lambda: field_value(app) == "loss", 15,
                         "the search typed right after ? /")  # fmt: skip

    run(scenario)


def test_path_prompt_typed_ahead() -> None:
    async def scenario(app: ShaperApp, pilot: Pilot[Any]) -> None:
        burst(app, "t", "ctrl+u", "x", ".", "j", "s", "o", "n")
        await wait_until(pilot, lambda: field_value(app) == "x.json", 15,
                         "the path typed right after t")  # fmt: skip

    run(scenario)


def test_history_opened_and_closed_in_one_burst_then_a_move() -> None:
    async def scenario(app: ShaperApp, pilot: Pilot[Any]) -> None:
        burst(app, "g", "escape", "j")
        await wait_until(pilot, lambda: app.focused is not None
                         and app.focused.id == "ingress-loss", 15,
                         "j after g Esc moving on from the rate")  # fmt: skip
        assert on_top(app) == "Screen"

    run(scenario)


def test_palette_text_typed_ahead() -> None:
    async def scenario(app: ShaperApp, pilot: Pilot[Any]) -> None:
        burst(app, "ctrl+p", "u", "n", "d", "o")
        await wait_until(pilot, lambda: field_value(app) == "undo", 15,
                         "the palette's text typed right after Ctrl+P")  # fmt: skip

    run(scenario)


def test_a_change_that_asks_answered_in_the_same_burst() -> None:
    """`End y j` on Loss: End asks (100 % stops the link), y answers it, j moves on after."""

    async def scenario(app: ShaperApp, pilot: Pilot[Any]) -> None:
        burst(app, "end", "y", "j")
        await wait_until(pilot, lambda: app.spec.link("ingress").loss == 1.0, 15,
                         "100 % loss, confirmed by the y typed after End")  # fmt: skip
        await wait_until(pilot, lambda: app.focused is not None
                         and app.focused.id == "ingress-loss_model", 15,
                         "j after the answer moving on from Loss")  # fmt: skip

    run(scenario, focus="ingress-loss")


def test_steps_between_runs_of_moves_act_on_the_control_each_finds() -> None:
    """Runs of moves are taken at once (`shaper_tui.focus_moves`), and a key between them
    still acts on the control the moves before it leave focused: `l` three on is Latency,
    `w` goes to the upload from where `k k k tab shift+tab` leave it (Rate)."""

    async def scenario(app: ShaperApp, pilot: Pilot[Any]) -> None:
        before = app.spec.default_link
        burst(app, "j", "j", "j", "l", "k", "k", "k", "tab", "shift+tab",
              "w", "down", "down", "down", "up", "down", "l")  # fmt: skip
        await wait_until(pilot, lambda: app.spec.link("egress").latency != before.egress.latency,
                         15, "the upload's Latency stepped")  # fmt: skip
        after = app.spec.default_link
        assert after.ingress.latency != before.ingress.latency
        assert (after.ingress.rate, after.egress.rate) == (before.ingress.rate, before.egress.rate)
        assert app.focused is not None and app.focused.id == "egress-latency"
        assert app.moves_at_once == 13, f"{app.moves_at_once} of the 13 moves taken at once"

    run(scenario)
