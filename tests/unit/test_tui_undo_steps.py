"""New-user report 35b, items 1 and 2: each typed value is an undo step of its own (two typed
within a second on one control merged, and the first could not be undone alone), and a loss
short of 100 % never reads 100 % nor is said to let nothing through. The engine is the
scripted one (tests/scripted_engine.py), as in test_tui_undo.py."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from shaper_tui.app import ShaperApp
from shaper_tui.screens.confirm import ConfirmScreen
from shaper_tui.widgets.value_slider import ValueSlider
from tests.scripted_engine import ScriptedEngine
from tests.unit.test_tui_undo import ingress, run, until


def test_two_typed_values_on_one_control_are_two_undo_steps() -> None:
    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        app.query_one("#ingress-latency").focus()
        await pilot.press("enter", "ctrl+u", *"30", "enter")
        await until(pilot, lambda: ingress(engine).latency == 30, "the first typed value")
        await pilot.press("enter", "ctrl+u", *"60", "enter")
        await until(pilot, lambda: ingress(engine).latency == 60, "the second typed value")
        await pilot.press("u")
        await until(pilot, lambda: ingress(engine).latency == 30, "the second undone alone")
        assert said[-1] == "Undone: Download Latency back to 30 ms · U redoes"
        await pilot.press("u")
        await until(pilot, lambda: ingress(engine).latency == 40, "the first undone")
        # Steps of one control still make one undo step; a typed value after them its own.
        await pilot.press("l", "l")
        await until(pilot, lambda: ingress(engine).latency == 75, "two steps")
        await pilot.press("enter", "ctrl+u", *"90", "enter")
        await until(pilot, lambda: ingress(engine).latency == 90, "typed after the steps")
        await pilot.press("u")
        await until(pilot, lambda: ingress(engine).latency == 75, "the typed value undone")
        await pilot.press("u")
        await until(pilot, lambda: ingress(engine).latency == 40, "both steps undone at once")

    run(scenario)


def test_a_loss_short_of_100_percent_reads_as_typed_and_is_asked_truly() -> None:
    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        loss = app.query_one("#ingress-loss", ValueSlider)
        loss.focus()
        await pilot.press("enter", *"99.96", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        question = str(app.screen.query_one("#question").render())
        assert question == ("Download Loss 99.96 %? Almost nothing gets through Download then."), (
            question
        )
        await pilot.press("y")
        await until(
            pilot, lambda: abs(ingress(engine).loss - 0.9996) < 1e-9, "99.96 % once confirmed"
        )
        await until(pilot, lambda: loss.text == "99.96 %", f"99.96 % shown, not {loss.text}")

    run(scenario)
