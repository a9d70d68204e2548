"""Helpers for driving the TUI with Textual's pilot against a real engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.pilot import Pilot

from engine.model.spec import Spec
from engine.protocol.client import ControlClient
from engine.protocol.messages import SpecChanged


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 5.0, what: str = ""
) -> None:
    """Let the app run until `condition` holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await pilot.pause(0.02)


class SpecWatcher:
    """Every spec the engine puts in force, with when it arrived here and who asked."""

    def __init__(self, control: str) -> None:
        self.client = ControlClient(control)
        self.events: list[tuple[float, str, Spec]] = []
        #: As the engine stamped them: (wall-clock time it applied the change, source, spec).
        self.changes: list[tuple[float, str, Spec]] = []
        #: (source, origin) of each change: who asked, through which door.
        self.doors: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        subscription = self.client.subscribe()
        self._ready.set()
        try:
            for message in subscription:
                if isinstance(message, SpecChanged):
                    with self._lock:
                        self.events.append((time.monotonic(), message.source, message.spec))
                        self.changes.append((message.at, message.source, message.spec))
                        self.doors.append((message.source, message.origin))
        except (OSError, TypeError, ValueError):
            return  # closed under our feet by close(): the watch is over

    def from_source(self, source: str) -> list[tuple[float, str, Spec]]:
        with self._lock:
            return [e for e in self.events if e[1] == source]

    def stamped(self) -> list[tuple[float, str, Spec]]:
        with self._lock:
            return list(self.changes)

    def origins(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.doors)

    def arrived(self, source: str, count: int) -> bool:
        return len(self.from_source(source)) >= count

    def close(self) -> None:
        self.client.close()


def record_notifications(app: App[Any], into: list[str]) -> None:
    """Append each notification `app` shows from now on to `into`, and still show it."""
    shown = app.notify

    def notify(message: str, **options: Any) -> None:
        into.append(message)
        shown(message, **options)

    app.notify = notify  # type: ignore[method-assign]
