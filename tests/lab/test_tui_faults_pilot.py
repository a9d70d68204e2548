"""The connection faults of the advanced settings (`a`), driven by their keys against a real
engine: the Blackhole switch and its parts (bytes, after, toxicity) set the engine's spec (read
back over its control socket), undo takes a part back, a change made elsewhere shows, and a
recording of it all replays the faults onto a fresh spec."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from engine.lab.harness import EngineProcess
from engine.model.faults import Blackhole
from engine.model.spec import LinkSpec, Spec
from engine.protocol.client import ControlClient
from engine.timelines.reading import read_timeline
from shaper_tui.app import ShaperApp, create_app
from shaper_tui.engine_source import SocketSource
from shaper_tui.screens.path_prompt import PathPrompt
from shaper_tui.widgets.choice_control import ChoiceControl
from shaper_tui.widgets.value_slider import ValueSlider
from tests.tui_helpers import wait_until

pytestmark = pytest.mark.lab

StartEngine = Callable[..., EngineProcess]
#: How long a change may take to reach the engine and the screen on a busy 2-core host, and
#: a replay to end (it lasts as long as the recording did, which a busy host stretches).
WAIT = 20.0
REPLAY_WAIT = 120.0
BASE = {"default_link": {"ingress": {"rate": "10mbit"}, "egress": {"rate": "2mbit"}}}


def engine_spec(engine: EngineProcess) -> Spec:
    with ControlClient(engine.control) as client:
        return client.get_spec()


def slider(app: ShaperApp, control: str) -> ValueSlider:
    return app.query_one(f"#{control}", ValueSlider)


async def typed(pilot: Pilot[Any], app: ShaperApp, control: str, text: str) -> None:
    """Focus `control` and type `text` into its exact-value prompt."""
    slider(app, control).focus()
    await pilot.press("enter", *text, "enter")


async def attached(app: ShaperApp, pilot: Pilot[Any]) -> None:
    await wait_until(pilot, lambda: app.link.attached and app.stats_seen > 0, 30, "attach")


def test_blackhole_is_switched_and_set_from_its_keys(
    start_engine: StartEngine, tmp_path: Path
) -> None:
    engine = start_engine(BASE)

    def link(direction: str) -> LinkSpec:
        return engine_spec(engine).link("ingress" if direction == "ingress" else "egress")

    async def scenario() -> None:
        app = create_app(SocketSource(engine.control), tag="tui:test", record_dir=str(tmp_path))
        async with app.run_test(size=(120, 48)) as pilot:
            await attached(app, pilot)
            await pilot.press("r", "a")  # record; the advanced settings
            switch = app.query_one("#ingress-blackhole", ChoiceControl)
            assert switch.value == "off" and slider(app, "ingress-blackhole_after_s").text == "off"
            switch.focus()
            await pilot.press("right")  # on: 10 s into each connection, every connection
            await wait_until(
                pilot, lambda: link("ingress").blackhole == Blackhole(after_s=10), WAIT
            )
            assert slider(app, "ingress-blackhole_after_s").text == "10 s"
            assert slider(app, "ingress-blackhole_after_bytes").text == "off"
            assert slider(app, "ingress-blackhole_toxicity").text == "100 %"
            await typed(pilot, app, "ingress-blackhole_after_bytes", "100kB")
            await typed(pilot, app, "ingress-blackhole_toxicity", "50")  # in %, as shown
            both = Blackhole(after_bytes=100_000, after_s=10, toxicity=0.5)
            await wait_until(pilot, lambda: link("ingress").blackhole == both, WAIT)
            assert slider(app, "ingress-blackhole_after_bytes").text == "100 kB"
            await typed(pilot, app, "ingress-blackhole_after_s", "off")  # bytes alone now
            await wait_until(pilot, lambda: link("ingress").blackhole
                             == Blackhole(after_bytes=100_000, toxicity=0.5), WAIT)  # fmt: skip
            await pilot.press("u")  # the time trigger back
            await wait_until(pilot, lambda: (b := link("ingress").blackhole) is not None
                             and b.after_s == 10, WAIT)  # fmt: skip
            # A part set while its fault is off switches it on with that trigger alone.
            await typed(pilot, app, "egress-blackhole_after_s", "2s")
            await wait_until(pilot, lambda: link("egress").blackhole == Blackhole(after_s=2), WAIT)
            assert app.query_one("#egress-blackhole", ChoiceControl).value == "on"
            with ControlClient(engine.control) as client:  # changed elsewhere: shown
                client.patch({"egress.blackhole.toxicity": 0.25}, source="set")
            toxicity = slider(app, "egress-blackhole_toxicity")
            await wait_until(pilot, lambda: toxicity.text == "25 %", WAIT, "shown")
            switch.focus()
            await pilot.press("left")  # off
            await wait_until(pilot, lambda: link("ingress").blackhole is None, WAIT)
            assert slider(app, "ingress-blackhole_after_bytes").text == "off"
            await pilot.press("r")  # stop recording
            with ControlClient(engine.control) as client:
                client.set_spec(Spec.model_validate(BASE), source="set")
            await wait_until(pilot, lambda: link("egress").blackhole is None, WAIT)
            await pilot.press("t")  # replay the recording onto the spec without faults
            await wait_until(pilot, lambda: isinstance(app.screen, PathPrompt), WAIT, "prompt")
            assert app.screen.query_one(Input).value == str(app.last_recording)
            await pilot.press("enter")
            await wait_until(pilot, lambda: link("egress").blackhole
                             == Blackhole(after_s=2, toxicity=0.25), REPLAY_WAIT)  # fmt: skip
            await wait_until(
                pilot, lambda: app.runner is None or app.runner.status().finished, REPLAY_WAIT
            )
            assert link("ingress").blackhole is None  # as the recording ended

    asyncio.run(scenario())
    (recording,) = tmp_path.glob("linkshaper-*.jsonl")
    sources = [step.source for step in read_timeline(recording).steps]
    assert sources[0] == "tui-start" and sources.count("tui:test") >= 7, sources
    assert '"blackhole' in recording.read_text()
