"""A real-time scheduling policy for the workers (`run --realtime`), so that busy processes
beside the engine do not push its releases late: a worker at SCHED_FIFO runs as soon as it is
woken, ahead of every ordinary process.

REALTIME_PRIORITY is modest on purpose: below the kernel's threaded interrupt handlers (50), so
that the NIC's interrupts that bring the frames still run first, and above ordinary processes
(which have no real-time priority at all). The kernel's real-time throttling
(`/proc/sys/kernel/sched_rt_runtime_us`, 95 % by default) leaves the rest of each second to
others even if a worker never slept.
"""

from __future__ import annotations

import os
import threading

#: SCHED_FIFO priority of each worker (1-99; `chrt -f 10` would set the same).
REALTIME_PRIORITY = 10
#: What the warning says to do where the policy is refused.
#: Either is enough: the kernel lets a process without CAP_SYS_NICE take a real-time priority
#: up to its RLIMIT_RTPRIO.
REALTIME_FIX = (
    "give the engine CAP_SYS_NICE (docker run --cap-add SYS_NICE), or an RLIMIT_RTPRIO of at "
    f"least {REALTIME_PRIORITY} (docker run --ulimit rtprio={REALTIME_PRIORITY})"
)


def make_realtime() -> None:
    """Run the calling thread (and the threads it starts later) at SCHED_FIFO, priority
    REALTIME_PRIORITY; OSError if this process may not."""
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))


def realtime_refusal() -> str | None:
    """Why this process may not run at SCHED_FIFO (None: it may). Tried for real, in a thread
    of its own that ends at once (the policy is per thread), so nothing here changes."""
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            make_realtime()
        except OSError as exc:
            outcome.append(exc.strerror or str(exc))
        else:
            outcome.append(None)

    trial = threading.Thread(target=attempt, name="linkshaper-realtime-probe")
    trial.start()
    trial.join()
    return outcome[0] if outcome else "the probe thread failed"
