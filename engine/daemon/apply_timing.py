"""How long a large change took to be in force, from the moment it was asked for (a SIGHUP
received, a request read) to both workers' word that it is: logged, so that an operator who
loads a spec of thousands of flows sees what it cost (and a bench can read it).
"""

from __future__ import annotations

import logging
import threading
import time

from engine.daemon.worker_pool import WorkerPool

log = logging.getLogger("linkshaper")

#: Changes with at least this many flows are timed (small ones are the hundreds a second of
#: a replay: a line each would flood the log). A SIGHUP is always timed.
TIMED_FROM_FLOWS = 1000
#: How many of the pool's waits for a change (APPLY_WAIT each) the timing waits at most.
WAITS = 10


def time_in_force(
    pool: WorkerPool, generation: int, asked_at: float, source: str, flows: int
) -> None:
    """Log, once both workers have `generation` in force, how long after `asked_at` (the
    monotonic clock) that was; from a thread of its own, as the pool's loop must be free to
    read the workers' answers."""
    if source != "sighup" and flows < TIMED_FROM_FLOWS:
        return

    def wait() -> None:
        for _ in range(WAITS):  # (each wait that ends late logs why)
            if not pool.await_generation(generation):
                took = time.monotonic() - asked_at
                log.info("spec from %s (%d flows) in force in %.3f s", source, flows, took)
                return

    threading.Thread(target=wait, name="linkshaper-apply-timing", daemon=True).start()
