"""A change the engine refuses is said in one clear line naming the control and the reason in
the control's unit (issue 35, s22: the TUI printed the validator's words, `default_link.
ingress.latency: Input should be less than or equal to 3600000`). The engine's gate words it
(the scripted engine is the real control hub and spec patcher); the TUI names the field as
its control."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from shaper_tui.app import ShaperApp
from shaper_tui.refusals import plain_refusal
from tests.scripted_engine import ScriptedEngine
from tests.unit.test_tui_undo import ingress, run, until


def test_a_typed_value_refused_is_said_in_one_line_in_its_unit() -> None:
    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        app.query_one("#ingress-latency").focus()
        await pilot.press("enter", *"5000s", "enter")
        refusal = "Download Latency: must be at most 3600 s (got 5000 s)"
        await until(pilot, lambda: refusal in said, f"{refusal!r} among {said}")
        assert ingress(engine).latency == 40  # nothing changed
        app.query_one("#ingress-loss").focus()
        await pilot.press("enter", *"150%", "enter")
        refusal = "Download Loss: must be at most 100 % (got 150 %)"
        await until(pilot, lambda: refusal in said, f"{refusal!r} among {said}")
        assert all("\n" not in line and "Input should" not in line for line in said)

    run(scenario)


def test_each_field_of_a_refusal_is_named_as_its_control() -> None:
    """The engine's paths (a replay's step too, with its prefix) as the controls name them;
    a field no control sets keeps its path, and flows' fields are left alone."""
    said = plain_refusal(
        "replay stopped: step 2: default_link.egress.burst_loss.p_enter: must be at most "
        "100 % (got 150 %); ingress.outage.down: must be at least 0 ms (got -1 ms); "
        "default_link.egress.queue.bytes: must be at least 1 (got 0); "
        "flows[0].link.egress.rate: must be at least 0 bit/s (got -1 bit/s)"
    )
    assert said == (
        "replay stopped: step 2: Upload Loss: must be at most 100 % (got 150 %); "
        "Download Out for: must be at least 0 ms (got -1 ms); "
        "Upload queue.bytes: must be at least 1 (got 0); "
        "flows[0].link.egress.rate: must be at least 0 bit/s (got -1 bit/s)"
    )
