"""A worker the supervisor restarts is said in the TUI (issue 35, s22: it was shown nowhere:
the stats said `restarting` for a moment, then `running` again). A real engine in a lab; its
download worker is killed with SIGKILL; the TUI attached to it says so in a toast and marks
the status bar with the time, from the engine's `worker_restarted` message."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from shaper_tui.app import create_app
from shaper_tui.engine_source import SocketSource
from tests.lab.test_doors_leftovers import (
    PATIENCE,
    StartEngine,
    notifications,
    until_attached,
)
from tests.tui_helpers import wait_until


@pytest.mark.lab
def test_a_worker_killed_and_restarted_is_said_in_the_tui(
    start_engine: StartEngine, tmp_path: Path
) -> None:
    engine = start_engine({})
    with engine.client() as client:
        old = client.info().worker_pids["ingress"]

    async def scenario() -> None:
        app = create_app(SocketSource(engine.control), tag="tui:restart",
                         record_dir=str(tmp_path))  # fmt: skip
        said = notifications(app)
        async with app.run_test(size=(120, 40)) as pilot:
            await until_attached(app, pilot)
            assert not app.status_bar.restarted
            os.kill(old, signal.SIGKILL)

            def told() -> bool:
                return any("download worker was killed by SIGKILL" in s for s in said)

            await wait_until(pilot, told, PATIENCE, f"the toast, among {said}")
            mark = app.status_bar.restarted
            assert mark.startswith("Download worker restarted ") and len(mark) == 34, mark
            assert f"↻ {mark}" in str(app.status_bar.render())
            with engine.client() as client:
                new: Any = client.info().worker_pids["ingress"]
            assert new != old  # a new process: the one the toast says was started

    asyncio.run(scenario())


#: How long the status bar is watched after the restart is said (reports come 10 a second).
WATCH_SECONDS = 3.0


@pytest.mark.lab
def test_one_worker_state_is_shown_and_a_new_engine_clears_the_mark(
    start_engine: StartEngine, tmp_path: Path
) -> None:
    """Issue 35: right after a worker kill `⚠ …: worker restarting` and `↻ … restarted`
    showed side by side (one state only, the newest), and the `↻` mark stayed after the TUI
    attached to a new engine process (it was the old engine's)."""
    engine = start_engine({})
    with engine.client() as client:
        old = client.info().worker_pids["ingress"]

    async def scenario() -> None:
        app = create_app(SocketSource(engine.control), tag="tui:restart",
                         record_dir=str(tmp_path))  # fmt: skip
        async with app.run_test(size=(200, 60)) as pilot:
            await until_attached(app, pilot)
            bars: list[str] = []
            os.kill(old, signal.SIGKILL)
            await wait_until(pilot, lambda: bool(app.status_bar.restarted), PATIENCE, "↻")
            until = time.monotonic() + WATCH_SECONDS
            while time.monotonic() < until:
                bars.append(app.status_bar.render().plain)
                await pilot.pause(0.02)
            both = [b for b in bars if "worker restarting" in b and "↻" in b]
            assert not both, f"two states at once: {both[0]}"
            assert "↻ Download worker restarted" in bars[-1], bars[-1]
            first = app.status_bar.engine_pid
            await asyncio.to_thread(engine.close)
            await asyncio.to_thread(start_engine, {})
            await wait_until(pilot, lambda: app.link.attached
                             and app.status_bar.engine_pid not in (0, first), PATIENCE * 2,
                             "attached to the new engine")  # fmt: skip
            await pilot.pause(0.2)
            assert "↻" not in app.status_bar.render().plain, app.status_bar.render().plain

    asyncio.run(scenario())
