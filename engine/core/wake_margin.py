"""How early a worker must wake before a held packet is due, learnt from how late this
machine's timers fire.

A process asleep in `select` wakes after its timeout: a few microseconds late on bare metal,
0.1 ms typically and several ms now and then on a shared virtual machine, where a halted
virtual CPU must be woken through the host (and is, measured, far more often held up there
than one that keeps running). A worker that wakes the margin early and polls for the rest
releases its packets on time. The margin is the longest lateness seen in the last WINDOW to
2 WINDOW seconds (the ceiling at first), within FLOOR and the ceiling: a good machine spins
next to nothing, a poor one keeps polling while packets are held, which is what on-time
release costs there. A quantile of the lateness would not do: the rare long wake is the one
that makes packets late, and a margin that falls between two of them lets the CPU halt
again (measured). Pure, on the caller's clock.
"""

from __future__ import annotations

#: Never less: the worker's own loop takes some tens of microseconds between wake and release.
FLOOR = 0.0001
#: Never more: then a worker polls from 2 ms before each release, so with packets due every
#: 2 ms or more often (500 a second) it does not sleep while it holds any.
CEILING = 0.002
#: Seconds a late wake-up is remembered for, at least (at most twice this).
WINDOW = 10.0


class WakeMargin:
    """The longest timer lateness of the current and the previous WINDOW, within bounds."""

    def __init__(self, now: float, ceiling: float = CEILING) -> None:
        self._ceiling = ceiling
        # Until the machine has shown for a window that its timers are punctual, assume not.
        self._started = now
        self._current = ceiling
        self._previous = 0.0
        self.value = ceiling

    def observe(self, late: float, now: float) -> None:
        """A timed sleep that should have ended at `now - late` ended at `now` (seconds)."""
        if now - self._started >= WINDOW:
            fresh = now - self._started < 2 * WINDOW
            self._previous = self._current if fresh else 0.0
            self._current = 0.0
            self._started = now
        self._current = max(self._current, late)
        self.value = min(self._ceiling, max(FLOOR, self._current, self._previous))
