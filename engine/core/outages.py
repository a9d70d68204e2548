"""When a link is down (`outage`): a periodic or a random schedule of down intervals."""

from __future__ import annotations

import random
from collections import deque

from engine.model.impairments import Outage

#: Down intervals of a random schedule kept behind the latest time asked about: frames are read
#: a little late, so questions come slightly out of order.
KEEP_BEHIND = 10.0


class OutageClock:
    """Answers "is the link down at `t`, and until when?" for the schedule it was given,
    counted from `now` (when the outage was set)."""

    def __init__(self, outage: Outage, rng: random.Random, now: float) -> None:
        self.outage = outage
        self._rng = rng
        self._origin = now
        self._intervals: deque[tuple[float, float]] = deque()
        self._drawn_until = now  # a random schedule is drawn up to here (an up time starts it)

    def down_until(self, t: float) -> float | None:
        """The end of the down interval `t` falls in, or None if the link is up at `t`."""
        outage = self.outage
        if outage.period is not None and outage.down is not None:
            period, down = outage.period / 1000.0, outage.down / 1000.0
            if t < self._origin:
                return None
            cycles, phase = divmod(t - self._origin, period)
            up = period - down
            return self._origin + cycles * period + period if phase >= up else None
        return self._random_down_until(t)

    def _random_down_until(self, t: float) -> float | None:
        assert self.outage.mean_up is not None and self.outage.mean_down is not None
        mean_up, mean_down = self.outage.mean_up / 1000.0, self.outage.mean_down / 1000.0
        while self._drawn_until <= t:
            start = self._drawn_until + self._rng.expovariate(1.0 / mean_up)
            end = start + self._rng.expovariate(1.0 / mean_down)
            self._intervals.append((start, end))
            self._drawn_until = end
        intervals = self._intervals
        while intervals and intervals[0][1] < t - KEEP_BEHIND:
            intervals.popleft()
        for start, end in intervals:
            if start <= t < end:
                return end
            if start > t:
                break
        return None
