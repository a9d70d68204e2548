"""A worker the supervisor restarts is said in the TUI (issue 35, s22: it was shown nowhere:
the stats said `restarting` for a moment, then `running` again). A real engine in a lab; its
download worker is killed with SIGKILL; the TUI attached to it says so in a toast and marks
the status bar with the time, from the engine's `worker_restarted` message."""

from __future__ import annotations

import asyncio
import os
import signal
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
