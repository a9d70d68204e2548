"""Run a function in another network namespace without a new process: `setns` with
CLONE_NEWNET moves only the calling thread, so a fresh thread can enter the lab's box and
talk to what listens on its loopback (and processes it starts inherit that namespace)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from engine.daemon.hosted import enter_netns

T = TypeVar("T")


def in_netns(name: str, function: Callable[[], T], timeout: float = 120.0) -> T:
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            enter_netns(name)
            result.append(function())
        except BaseException as exc:  # handed back to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"still running in {name} after {timeout} s")
    if failure:
        raise failure[0]
    return result[0]
