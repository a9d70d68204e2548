"""The Seed of the advanced settings (reproducible fates): on sets a seed on the link (and
keeps one given elsewhere), off clears it; what the scripted engine received is asserted."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from engine.model.spec import LinkSpec, Spec
from engine.model.spec_patch import patch_spec
from shaper_tui.app import ShaperApp
from shaper_tui.link_edits import TUI_SEED, changes_for, shown_value
from shaper_tui.widgets.choice_control import ChoiceControl
from tests.scripted_engine import ScriptedEngine
from tests.unit.test_tui_undo import ingress, run, until


def test_the_seed_switch_sets_and_clears_the_links_seed() -> None:
    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        await pilot.press("a")  # the advanced settings
        choice = app.query_one("#ingress-seed", ChoiceControl)
        assert choice.value == "off"
        choice.focus()
        await pilot.press("right")
        await until(pilot, lambda: ingress(engine).seed == TUI_SEED, "seeded")
        assert choice.value == "on"
        await pilot.press("left")
        await until(pilot, lambda: ingress(engine).seed is None, "cleared")
        assert choice.value == "off"

    run(scenario)


def test_switching_on_keeps_a_seed_given_elsewhere() -> None:
    link = LinkSpec(seed=12345)
    assert shown_value(link, "seed") == "on"
    spec = patch_spec(Spec(), changes_for("egress", "seed", "on", link))
    assert spec.link("egress").seed == 12345
    assert changes_for("egress", "seed", "off", link) == {"egress.seed": None}
