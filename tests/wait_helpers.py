"""Waiting for something to happen instead of sleeping a fixed time: a fixed sleep is too short
on a busy machine and too long everywhere else. A sleep stays only where a test checks that
nothing happens for a while."""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.lab.harness import EngineProcess
from engine.lab.lab import Lab


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Return once `condition()` is true; fail saying `what` did not happen within `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def udp_bound(lab: Lab, role: str, port: int) -> bool:
    """Whether a UDP socket is bound to `port` in the lab's `role` namespace (a receiver ready)."""
    listed = lab.run(role, "ss", "-H", "-n", "-l", "-u", check=False).stdout
    return any(line.split()[3].endswith(f":{port}") for line in listed.splitlines() if line.strip())


def wait_udp_bound(lab: Lab, role: str, port: int, timeout: float = 15.0) -> None:
    """Until a receiver started in the background has bound its port: what it sends before
    then is lost."""
    wait_until(
        lambda: udp_bound(lab, role, port), timeout, f"a UDP receiver on {role}:{port}", 0.05
    )


def wait_reported_since(
    engine: EngineProcess, moment: float, direction: str = "egress", timeout: float = 10.0
) -> None:
    """Until `direction`'s worker has reported stats counted after `moment` (time.monotonic():
    the workers stamp their reports with the same clock), i.e. the next stats report."""

    def reported() -> bool:
        with engine.client() as client:
            stats = getattr(client.stats(), direction)
        return stats is not None and stats.at > moment

    wait_until(reported, timeout, f"a {direction} stats report", 0.05)
