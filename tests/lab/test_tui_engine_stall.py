"""After the engine stalls longer than a reply may take, the TUI's next change is applied
(session 22 attack F9): the request client the timeout shut down was kept, so every later
change failed with `Broken pipe` while the status bar said attached, and the refused control
kept showing the refused value. And the controls show what the engine put in force: the
engine's echo of the TUI's own change often comes before the reply to it, was taken for a
stale one and skipped, and nothing showed the change afterwards (the control read the old
5 ms in about half of the changes while the engine had 15)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from engine.lab.harness import EngineProcess
from engine.lab.lab import INNER, OUTER, Lab
from engine.model.spec import Spec
from engine.protocol.client import ControlClient
from engine.protocol.control import REPLY_TIMEOUT
from shaper_tui.app import ShaperApp, create_app
from shaper_tui.engine_source import EngineSource, HostedSource, SocketSource
from tests.lab.test_liveness import stopped
from tests.tui_helpers import wait_until

pytestmark = pytest.mark.lab

StartEngine = Callable[..., EngineProcess]
BASE = {"ingress": {"latency": "5ms"}, "egress": {}}
#: Longer than REPLY_TIMEOUT, so the change sent meanwhile times out.
STALL = REPLY_TIMEOUT + 2
#: Changes sent one after another, each waited for: the echo was skipped in one of six to
#: one of two of them, so twelve show the bug in nearly every run (and twice as many in two).
LATENCIES = tuple(float(ms) for ms in range(15, 75, 5))
#: How long a change may take to be in force, and then to be shown (a busy 2-core machine).
IN_FORCE_SECONDS = 10.0
SHOWN_SECONDS = 3.0


def engine_latency(control: str) -> float:
    with ControlClient(control) as client:
        return client.get_spec().link("ingress").latency


async def in_force(control: str, pilot: Pilot[Any], latency: float) -> float:
    """The engine's ingress latency once it is `latency`, or the last read after the wait."""
    until = time.monotonic() + IN_FORCE_SECONDS
    got = await asyncio.to_thread(engine_latency, control)
    while got != latency and time.monotonic() < until:
        await pilot.pause(0.1)
        got = await asyncio.to_thread(engine_latency, control)
    return got


async def changes_shown(control: str, app: ShaperApp, pilot: Pilot[Any]) -> None:
    """Each of LATENCIES sent as the link sends a change, in force, then shown."""
    for latency in LATENCIES:
        app.link.patch({"ingress.latency": f"{latency:g}ms"})
        got = await in_force(control, pilot, latency)
        assert got == latency, f"the engine has {got} ms, not the {latency:g} ms set"
        until = time.monotonic() + SHOWN_SECONDS
        while app.spec.link("ingress").latency != latency and time.monotonic() < until:
            await pilot.pause(0.05)
        shown = app.spec.link("ingress").latency
        assert shown == latency, f"the control shows {shown} ms while the engine has {got}"


def test_the_controls_show_each_own_change_in_force(start_engine: StartEngine) -> None:
    engine = start_engine(BASE)

    async def scenario() -> None:
        app = create_app(SocketSource(engine.control), tag="tui:test")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.link.attached, 10, "attached")
            await changes_shown(engine.control, app, pilot)

    asyncio.run(scenario())


def test_a_change_after_an_engine_stall_is_applied(start_engine: StartEngine) -> None:
    engine = start_engine(BASE)
    stall_and_change(SocketSource(engine.control), lambda: engine.control)


def test_a_change_after_a_stall_of_the_tuis_own_engine_is_applied(lab: Lab) -> None:
    """`tui OUTER INNER` reattaches as `tui --control` does: it stayed detached for good."""
    source = HostedSource(OUTER, INNER, Spec.model_validate(BASE), netns=lab.ns("box"))

    def control() -> str:
        assert source.control_path is not None
        return source.control_path

    try:
        stall_and_change(source, control)
    finally:
        source.close()


def stall_and_change(source: EngineSource, control: Callable[[], str]) -> None:
    """The engine stopped while a change is on its way; then changes shown as in force."""

    async def scenario() -> None:
        app = create_app(source, tag="tui:test")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.link.attached, 30, "attached")
            with ControlClient(control()) as client:
                supervisor = client.info().supervisor_pid
            with stopped(supervisor):
                app.link.patch({"ingress.latency": "30ms"})
                await asyncio.sleep(STALL)  # the change times out meanwhile
            # The refused change is not what the control shows: the engine's value is.
            await wait_until(pilot, lambda: app.spec.link("ingress").latency == 5.0, 10,
                             "the control back at the engine's value")  # fmt: skip
            await wait_until(pilot, lambda: app.link.attached, 10, "attached again")
            await changes_shown(control(), app, pilot)

    asyncio.run(scenario())


def test_a_stalled_engine_is_said_and_a_waiting_change_is_pending(
    start_engine: StartEngine,
) -> None:
    """Issue 35: during a stall the status bar kept saying `● attached` and a typed value
    showed as if in force until `Not applied` came 10 s later. Now the bar says the engine is
    not answering (and how long) and that a change is being applied, and says attached again
    once the engine answers."""
    engine = start_engine(BASE)

    async def scenario() -> None:
        app = create_app(SocketSource(engine.control), tag="tui:test")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.link.attached, 10, "attached")
            with ControlClient(engine.control) as client:
                supervisor = client.info().supervisor_pid

            def bar() -> str:
                return app.status_bar.render().plain

            with stopped(supervisor):
                app.link.patch({"ingress.latency": "30ms"})
                await wait_until(pilot, lambda: "applying…" in bar(), 3, "applying… said")
                await wait_until(pilot, lambda: "engine not answering for" in bar(), 8,
                                 "the stall said")  # fmt: skip
                assert "● attached" not in bar()
            await wait_until(pilot, lambda: "● attached" in bar(), 15, "attached again")
            await wait_until(pilot, lambda: "applying…" not in bar(), 15, "answered")
            assert "not answering" not in bar()

    asyncio.run(scenario())
