"""Issue 35 items 2, 3, 6 and 14, driven by the keys: every change goes on one undo and redo
history, a change that stops the link is confirmed first, a bare number in a prompt is in the
unit the control shows, a 100 % loss reads `100%`, and a TUI with no engine says it is not
attached and shows no value that is not in force. The engine is the scripted one
(tests/scripted_engine.py: the real control hub and spec patcher); what it received is what
is asserted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot

from engine.model.spec import Spec
from engine.model.stats import DirectionStats, Drops, LinkStats
from engine.protocol.messages import PatchSpec
from shaper_tui.app import ShaperApp, create_app
from shaper_tui.engine_source import SocketSource
from shaper_tui.messages import StatsArrived
from shaper_tui.screens.confirm import ConfirmScreen
from shaper_tui.screens.value_prompt import ValuePrompt
from shaper_tui.widgets.value_slider import ValueSlider
from tests.lab.test_doors_leftovers import notifications
from tests.scripted_engine import ScriptedEngine
from tests.tui_helpers import wait_until

START = Spec.model_validate(
    {"default_link": {"ingress": {"rate": "20mbit", "latency": "40ms"}, "egress": {}}}
)
Scenario = Callable[[ShaperApp, ScriptedEngine, Pilot[Any], list[str]], Awaitable[None]]


def run(scenario: Scenario, size: tuple[int, int] = (100, 32)) -> None:
    engine = ScriptedEngine(START, samples=2)
    app = create_app(engine, tag="tui:undo")
    said = notifications(app)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await wait_until(pilot, lambda: app.link.attached, 10, "attached")
            await scenario(app, engine, pilot, said)

    asyncio.run(main())


def ingress(engine: ScriptedEngine) -> Any:
    return engine.spec.default_link.ingress


async def until(pilot: Pilot[Any], condition: Callable[[], bool], what: str) -> None:
    await wait_until(pilot, condition, 5, what)


def test_a_step_a_typed_value_and_a_choice_are_undone_and_redone() -> None:
    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        app.query_one("#ingress-loss").focus()
        await pilot.press("l")
        await until(pilot, lambda: ingress(engine).loss == 0.0001, "the step")
        await pilot.press("u")
        await until(pilot, lambda: ingress(engine).loss == 0, "the step undone")
        assert said[-1] == "Undone: Download Loss back to 0 % · U redoes"
        assert app.query_one("#ingress-loss", ValueSlider).text == "0 %"
        await pilot.press("U")
        await until(pilot, lambda: ingress(engine).loss == 0.0001, "the step redone")
        assert said[-1] == "Redone: Download Loss 0.01 % again · u undoes"
        # A typed value, then a choice: undone newest first, Ctrl+Z as u, Ctrl+Y as U.
        app.query_one("#ingress-latency").focus()
        await pilot.press("enter", *"90ms", "enter")
        await until(pilot, lambda: ingress(engine).latency == 90, "the typed latency")
        app.query_one("#ingress-jitter_distribution").focus()
        await pilot.press("right")
        await until(pilot, lambda: ingress(engine).jitter_distribution == "normal", "choice")
        await pilot.press("ctrl+z")
        await until(pilot, lambda: ingress(engine).jitter_distribution == "uniform", "undo")
        await pilot.press("ctrl+z")
        await until(pilot, lambda: ingress(engine).latency == 40, "the latency undone")
        assert said[-1] == "Undone: Download Latency back to 40 ms · U redoes"
        await pilot.press("ctrl+y")
        await until(pilot, lambda: ingress(engine).latency == 90, "the latency redone")
        assert ingress(engine).jitter_distribution == "uniform"  # not redone yet

    run(scenario)


def test_a_burst_of_steps_on_one_control_is_one_undo() -> None:
    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        app.query_one("#ingress-latency").focus()
        await pilot.press("l", "l", "l")  # 40 -> 50 -> 75 -> 100 ms
        await until(pilot, lambda: ingress(engine).latency == 100, "three steps")
        await pilot.press("u")
        await until(pilot, lambda: ingress(engine).latency == 40, "one undo for all three")
        assert said[-1] == "Undone: Download Latency back to 40 ms · U redoes"
        assert not app.session.history.can_undo
        assert "u" not in app.screen.active_bindings  # nothing left: not offered

    run(scenario)


def test_a_change_that_stops_the_link_is_confirmed_first() -> None:
    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        loss = app.query_one("#ingress-loss", ValueSlider)
        loss.focus()
        await pilot.press("end")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        question = str(app.screen.query_one("#question").render())
        assert question == "Download Loss 100 %? Nothing gets through Download then."
        await pilot.press("n")
        await until(pilot, lambda: loss.text == "0 %", "the control back on the spec")
        await pilot.pause(0.2)
        assert engine.received == []  # nothing sent
        # Typed: the same question; yes sends it.
        await pilot.press("enter", *"100%", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked again")
        await pilot.press("y")
        await until(pilot, lambda: ingress(engine).loss == 1.0, "100 % once confirmed")
        # Home on a rate blocks it: asked too.
        app.query_one("#ingress-rate").focus()
        await pilot.press("home")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked on Home")
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert ingress(engine).rate == 20_000_000
        assert app.query_one("#ingress-rate", ValueSlider).text == "20 Mbit/s"

    run(scenario)


def test_undo_leaves_alone_what_another_client_changed_meanwhile() -> None:
    """Issue NEWUSER22 item 1: `u` put back the whole spec before the change, and a change
    by the CLI made meanwhile was gone without a word."""

    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        app.query_one("#ingress-latency").focus()
        await pilot.press("l")  # 40 -> 50 ms
        await until(pilot, lambda: ingress(engine).latency == 50, "the step")
        by_cli(engine, {"egress.latency": 80})
        await until(pilot, lambda: app.spec.link("egress").latency == 80, "the CLI's change")
        await pilot.press("u")
        await until(pilot, lambda: ingress(engine).latency == 40, "the step undone")
        assert engine.spec.default_link.egress.latency == 80  # the CLI's change stays
        assert said[-1] == "Undone: Download Latency back to 40 ms · U redoes"
        await pilot.press("U")
        await until(pilot, lambda: ingress(engine).latency == 50, "redone")
        # The CLI changes the very field: `u` leaves it as the CLI set it, and says so.
        by_cli(engine, {"ingress.latency": 120})
        await until(pilot, lambda: app.spec.link("ingress").latency == 120, "the CLI's value")
        sent = len(engine.received)
        await pilot.press("u")
        await until(pilot, lambda: said[-1].startswith("Not undone"), "the refusal")
        assert said[-1] == "Not undone: Download Latency was changed by cli since"
        await pilot.pause(0.2)
        assert len(engine.received) == sent and ingress(engine).latency == 120
        assert not app.session.history.can_undo  # the step is dropped, not kept to fail again

    run(scenario)


def by_cli(engine: ScriptedEngine, changes: dict[str, Any]) -> None:
    """A change by another client, through the engine's patch door as `linkshaper set`."""
    engine._handle(PatchSpec(changes=changes, source="cli"))


def test_end_on_a_bursty_loss_asks_first() -> None:
    """Issue NEWUSER22 item 2: End on a bursty Loss set 99 % (p_enter 1.0) with no question,
    and nothing got through."""

    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        app.query_one("#ingress-loss_model").focus()
        await pilot.press("right")
        await until(pilot, lambda: ingress(engine).burst_loss is not None, "bursty")
        sent = len(engine.received)
        loss = app.query_one("#ingress-loss", ValueSlider)
        loss.focus()
        await pilot.press("end")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        question = str(app.screen.query_one("#question").render())
        assert question == "Download Loss 99 %? Almost nothing gets through Download then."
        # Issue NEWUSER22 item 15: while asked, the control showed 99 % as if in force.
        assert loss.text == "0 %"
        await pilot.press("n")
        await until(pilot, lambda: loss.text == "0 %", "the control back on the spec")
        await pilot.pause(0.2)
        assert len(engine.received) == sent

    run(scenario)


def test_a_burst_that_ends_where_it_began_leaves_nothing_to_undo() -> None:
    """Issue NEWUSER22 item 11: ten `l` then ten `h` gave `Undone: … 5 ms → 5 ms`."""

    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        app.query_one("#ingress-loss").focus()
        await pilot.press("l", "l", "h", "h")
        await until(pilot, lambda: len(engine.received) >= 1, "the steps sent")
        await until(pilot, lambda: app.query_one("#ingress-loss", ValueSlider).text == "0 %",
                    "back at 0 %")  # fmt: skip
        assert not app.session.history.can_undo
        await pilot.press("u")
        await pilot.pause(0.3)
        assert not any(text.startswith("Undone") for text in said), said

    run(scenario)


def test_the_first_step_on_an_outage_is_half_a_second_every_five() -> None:
    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        await pilot.press("a")
        app.query_one("#ingress-outage_every").focus()
        await pilot.press("right")
        await until(pilot, lambda: ingress(engine).outage is not None, "an outage")
        outage = ingress(engine).outage
        assert (outage.period, outage.down, outage.mode) == (5000, 500, "blocked")
        await pilot.press("u")
        await until(pilot, lambda: ingress(engine).outage is None, "the outage undone")
        app.query_one("#ingress-outage_for").focus()
        await pilot.press("right")
        await until(pilot, lambda: ingress(engine).outage is not None, "an outage again")
        outage = ingress(engine).outage
        assert (outage.period, outage.down) == (5000, 500)

    run(scenario)


def test_a_bare_number_in_a_prompt_is_in_the_unit_the_control_shows() -> None:
    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        app.query_one("#ingress-loss").focus()
        await pilot.press("1")  # a digit opens the prompt with it typed
        await until(pilot, lambda: isinstance(app.screen, ValuePrompt), "the prompt")
        hint = str(app.screen.query_one("#hint").render())
        assert hint.endswith("a bare number is in %"), hint
        # Issue NEWUSER22 item 15: the prompt's footer said only `esc Cancel`.
        shown = {b.key: b.description for _, b, _, _ in app.screen.active_bindings.values()
                 if b.show}  # fmt: skip
        assert shown.get("enter") == "Apply", shown
        await pilot.press("enter")
        await until(pilot, lambda: ingress(engine).loss == 0.01, "1 %, not 100 %")
        app.query_one("#ingress-latency").focus()
        await pilot.press("7", "5", "enter")
        await until(pilot, lambda: ingress(engine).latency == 75, "75 ms")
        app.query_one("#ingress-rate").focus()
        await pilot.press("5", "enter")
        await until(pilot, lambda: ingress(engine).rate == 5_000_000, "5 Mbit/s")
        app.query_one("#ingress-loss").focus()
        await pilot.press("enter", *"2ms", "enter")
        error = str(app.screen.query_one("#error").render())
        assert error == "Download (ingress): Loss: unknown unit 'ms' (use %)"
        await pilot.press("escape")

    run(scenario)


def _all_lost(at: float, count: int) -> DirectionStats:
    total = LinkStats(packets_in=count, bytes_in=count * 1000, drops=Drops(loss=count))
    return DirectionStats(direction="ingress", at=at, pid=7, total=total)


def test_a_loss_of_100_percent_reads_100_percent() -> None:
    """Issue 35 item 6: it read `1e+02%`."""

    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        lost = app.panels["ingress"].sparks["lost"]
        for i in range(3):
            app.post_message(StatsArrived(_all_lost(1000.0 + i, 1000 * (i + 1))))
        await until(pilot, lambda: "%" in str(lost.figure.render()), "the loss figure")
        assert str(lost.figure.render()).startswith("100% "), str(lost.figure.render())

    run(scenario)


def test_with_no_engine_it_says_not_attached_and_shows_only_what_is_in_force(
    tmp_path: Any,
) -> None:
    """Issue 35 item 14: it said `✖ engine lost` (it never had one), and a step showed
    `0.01 %` while the toast said the change was not applied."""
    app = create_app(SocketSource(str(tmp_path / "no-engine.sock")), tag="tui:none")
    said = notifications(app)

    async def main() -> None:
        async with app.run_test(size=(100, 32)) as pilot:
            await wait_until(pilot, lambda: app.status_bar.attached is False, 5, "no engine")
            line = str(app.status_bar.render())
            assert "engine lost" not in line
            # The reason, then how to start one if it fits (test_tui_fit.py).
            assert line.startswith("○ not attached · no engine"), line
            loss = app.query_one("#ingress-loss", ValueSlider)
            loss.focus()
            await pilot.press("l")
            await wait_until(pilot, lambda: bool(said), 5, "the toast")
            await pilot.pause(0.2)
            assert loss.text == "0 %" and app.spec == Spec()
            assert said == ["not attached to an engine: nothing was changed"]
            assert not app.session.history.can_undo  # nothing went on the history

    asyncio.run(main())
