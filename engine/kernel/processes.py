"""Stopping a process the same way everywhere: SIGTERM, a grace period, then SIGKILL. For a
child started with `subprocess` or `multiprocessing`, and for one known only by its pid (an
engine that `ns add` started and a later command stops)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from multiprocessing.process import BaseProcess
from typing import Any

#: How often a process known only by its pid is looked at while it has time to stop.
PID_CHECK = 0.05


def stop_process(process: subprocess.Popen[Any] | BaseProcess, grace: float = 5.0) -> None:
    """Stop a child and reap it (a no-op if it has ended)."""
    if isinstance(process, BaseProcess):
        if process.is_alive():
            process.terminate()
            process.join(grace)
        if process.is_alive():
            process.kill()
            process.join(grace)
        return
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_pid(pid: int, grace: float = 5.0) -> None:
    """Stop a process that is not our child: it cannot be reaped, only waited for."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(PID_CHECK)
        os.kill(pid, signal.SIGKILL)
