"""Enter on a choice (Loss mode, Jitter as, ...) opens its options as a list: a new user took
Enter for "let me choose" and saw it step to the next option instead (issue 35, s22). ↑/↓ and
Enter pick, Esc keeps the option in force, ←/→ still step. The engine is the scripted one
(tests/scripted_engine.py); what it received is what is asserted."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import OptionList

from shaper_tui.app import ShaperApp
from shaper_tui.screens.choice_picker import ChoicePicker
from shaper_tui.widgets.choice_control import ChoiceControl
from tests.scripted_engine import ScriptedEngine
from tests.unit.test_tui_undo import ingress, run, until


def test_enter_on_a_choice_opens_a_list_escape_keeps_it_and_enter_picks() -> None:
    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        choice = app.query_one("#ingress-jitter_distribution", ChoiceControl)
        choice.focus()
        await pilot.pause()
        assert "enter" in app.active_bindings and any(
            b.binding.action == "pick" for b in app.active_bindings.values()
        )  # the footer says ⏎ pick on a choice
        await pilot.press("enter")
        picker = app.screen
        assert isinstance(picker, ChoicePicker), "Enter stepped the choice instead"
        listed = picker.query_one(OptionList)
        assert [listed.get_option_at_index(i).id for i in range(listed.option_count)] == [
            "uniform", "normal", "pareto",
        ]  # fmt: skip
        assert listed.highlighted == 0  # the option in force
        await pilot.press("down", "escape")
        await pilot.pause()
        assert not isinstance(app.screen, ChoicePicker)
        assert choice.value == "uniform" and ingress(engine).jitter_distribution == "uniform"
        await pilot.press("enter", "down", "down", "enter")
        await until(pilot, lambda: ingress(engine).jitter_distribution == "pareto", "picked")
        assert not isinstance(app.screen, ChoicePicker) and choice.value == "pareto"
        await pilot.press("u")  # the pick is a change like the others: undone
        await until(pilot, lambda: ingress(engine).jitter_distribution == "uniform", "undone")
        await pilot.press("right")  # ←/→ still step
        await until(pilot, lambda: ingress(engine).jitter_distribution == "normal", "stepped")
        assert not isinstance(app.screen, ChoicePicker)

    run(scenario)
