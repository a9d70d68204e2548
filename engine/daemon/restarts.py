"""When a worker whose process ended is started again, and how its end is told (the log line
and the `worker_restarted` message to subscribers say it)."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

from engine.model.spec import Direction
from engine.protocol.messages import WorkerRestarted

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

#: A worker that cannot be started, or dies before it says a word, is tried again after this
#: long, twice as long each time after that (a worker that worked is restarted at once)...
RESTART_BACKOFF = 0.2
#: ...but at most this long apart: a failure that lasts (no descriptors left) costs a log line
#: and a try every few seconds, not a busy loop, and the worker is back soon after it ends.
RESTART_BACKOFF_MAX = 5.0


def exit_cause(code: int | None) -> str:
    """How a worker's process ended, as its exit code says (negative: the signal)."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def backoff(failures: int) -> float:
    """The pause before a worker's next start after `failures` in a row: none after none."""
    if failures <= 0:
        return 0.0
    return float(min(RESTART_BACKOFF * 2 ** (failures - 1), RESTART_BACKOFF_MAX))


def restarted_message(
    direction: Direction, process: BaseProcess | None, old_pid: int | None, cause: str
) -> WorkerRestarted:
    """What subscribers are told when a worker was started again (the stats say only its
    state, which is `running` again a moment later)."""
    assert process is not None and process.pid is not None
    return WorkerRestarted(
        direction=direction, pid=process.pid, old_pid=old_pid, cause=cause, at=time.time()
    )
