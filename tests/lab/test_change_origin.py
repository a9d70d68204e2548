"""A change made elsewhere says who made it (issue 35, item 16): the engine's `spec_changed`
carries the door the supervisor saw the change come through (`origin`: control, http,
sighup), and the TUI toasts `Changed by …` for every change it did not make itself."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from engine.lab.harness import EngineProcess
from engine.lab.lab import Lab
from engine.protocol.client import ControlClient
from shaper_tui.app import create_app
from shaper_tui.engine_source import SocketSource
from tests.netns_thread import in_netns
from tests.tui_helpers import SpecWatcher, record_notifications, wait_until

pytestmark = pytest.mark.lab

StartEngine = Callable[..., EngineProcess]
PORT = 8093
BASE = {"ingress": {"latency": "5ms"}, "egress": {}}


def http_patch(lab: Lab, changes: dict[str, Any]) -> None:
    """From inside the box, where the API listens on loopback."""

    def call() -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{PORT}/qos", data=json.dumps(changes).encode(), method="PATCH",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)

    assert in_netns(lab.ns("box"), call) == 200


def test_each_door_is_named_and_the_tui_says_who_changed_the_link(
    start_engine: StartEngine, lab: Lab
) -> None:
    engine = start_engine(BASE, extra=("--http", f"127.0.0.1:{PORT}"))
    watcher = SpecWatcher(engine.control)
    toasts: list[str] = []

    async def scenario() -> None:
        app = create_app(SocketSource(engine.control), tag="tui:test")
        async with app.run_test(size=(120, 40)) as pilot:
            record_notifications(app, toasts)
            await wait_until(pilot, lambda: app.link.attached and app.stats_seen > 0, 10)
            with ControlClient(engine.control) as client:
                client.patch({"ingress.latency": "7ms"}, source="cli")
            await wait_until(pilot, lambda: len(toasts) >= 1, 5, "the control client's toast")
            await asyncio.to_thread(http_patch, lab, {"ingress.latency": "9ms"})
            await wait_until(pilot, lambda: len(toasts) >= 2, 5, "the HTTP change's toast")
            engine.spec_path.write_text(json.dumps({"ingress": {"latency": "11ms"}}))
            engine.signal(signal.SIGHUP)
            await wait_until(pilot, lambda: len(toasts) >= 3, 5, "the SIGHUP's toast")
            app.set_focus(app.query_one("#ingress-latency"))
            await pilot.press("right")  # a change of its own: no toast
            await pilot.pause(1.0)

    try:
        asyncio.run(scenario())
        deadline = time.monotonic() + 5
        while len(watcher.origins()) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.origins() == [("cli", "control"), ("http", "http"),
                                     ("sighup", "sighup"), ("tui:test", "control")]  # fmt: skip
    finally:
        watcher.close()
    assert toasts == [  # who, and what
        "Changed by another client (cli): Download latency",
        "Changed over the HTTP API (http): Download latency",
        "Changed by SIGHUP: the engine read its spec file again: Download latency",
    ]


def test_a_control_client_calling_itself_http_is_shown_as_control(
    start_engine: StartEngine,
) -> None:
    """`source` is the client's own words and never picks the door: a control-socket client
    that says "http" is a control change. (Only origin `network`, the declaration
    `linkshaper http` makes, is shown as `http`; docs/control-protocol.md says whom that
    trusts.)"""
    engine = start_engine(BASE)
    watcher = SpecWatcher(engine.control)
    try:
        with ControlClient(engine.control) as client:
            client.patch({"ingress.latency": "7ms"}, source="http")
            client.patch({"ingress.latency": "8ms"}, source="sighup")
        deadline = time.monotonic() + 5
        while len(watcher.origins()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.origins() == [("http", "control"), ("sighup", "control")]
    finally:
        watcher.close()
