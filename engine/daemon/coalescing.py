"""Doing something at most so often for a stream of changes, always for the latest one.

A replay can change the spec hundreds of times a second (a 1 ms timeline at speed 1000). Each
change must be in force at once, but the spec file (fsynced each time) and the log need only
the latest: written at most every so often, and at the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

Value = TypeVar("Value")

#: The spec file is written at most this often (seconds): a few writes a second is nothing for
#: a disk, and a change is on disk at most this long after it was made.
SPEC_WRITE_INTERVAL = 0.2
#: "spec applied" is logged at most this often (seconds); changes in between are counted in
#: the next line instead of one line each.
SPEC_LOG_INTERVAL = 1.0


class Coalescer(Generic[Value]):
    """Calls `action(latest, count)` for submitted values: at once when the last call is at
    least `interval` ago (in the submitter's thread, so a lone change is done when `submit`
    returns), else once the interval is over, in a timer thread, with the latest value and
    how many were submitted since the last call. `close()` does what is pending at once;
    nothing submitted is ever left undone."""

    def __init__(self, interval: float, action: Callable[[Value, int], None], name: str) -> None:
        self.interval = interval
        self._action = action
        self._name = name
        self._lock = threading.Lock()  # the state below
        self._acting = threading.Lock()  # one action at a time, in the order values came
        self._pending: Value | None = None
        self._count = 0
        self._last = -float("inf")
        self._timer: threading.Timer | None = None
        self._closed = False
        #: Actions done: what a test (or a curious operator) counts.
        self.actions = 0

    def submit(self, value: Value) -> None:
        with self._lock:
            self._pending = value
            self._count += 1
            wait = self._last + self.interval - time.monotonic()
            if self._timer is not None:
                return  # the timer takes this one too
            if wait > 0 and not self._closed:
                self._timer = threading.Timer(wait, self._on_timer)
                self._timer.daemon = True
                self._timer.name = self._name
                self._timer.start()
                return
        self.flush()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        self.flush()

    def flush(self) -> None:
        """Do what is pending now, if anything."""
        with self._acting:
            with self._lock:
                if self._count == 0:
                    return
                value, count = self._pending, self._count
                self._pending, self._count = None, 0
                self._last = time.monotonic()
            assert value is not None
            self.actions += 1
            self._action(value, count)

    def discard(self) -> None:
        """Forget what is pending (it is out of date: what it was for is done another way);
        once this returns, no action for it runs or is running."""
        with self._acting, self._lock:
            self._pending, self._count = None, 0

    def close(self) -> None:
        """Do what is pending now; later values are done at once, each."""
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.flush()
