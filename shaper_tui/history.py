"""The last minutes of the engine's stats and spec changes, kept by the TUI for its history
screen: of each report, only the figures the screen draws (`history_columns.Sample`)."""

from __future__ import annotations

import time
from collections import deque

from engine.model.spec import Spec
from engine.model.stats import DirectionStats
from shaper_tui.history_columns import Sample, SetPoint

#: How far back the history goes.
HISTORY_SECONDS = 600.0
#: Samples kept a second per direction (the engine reports ten).
SAMPLES_PER_SECOND = 2
#: Spec changes kept at most: one per sample interval over the whole history (the chart
#: cannot draw two changes in one sample), and the one in force at its start. A flood of
#: changes (tens of thousands a minute) keeps the TUI's memory bounded.
MAX_STEPS = int(HISTORY_SECONDS * SAMPLES_PER_SECOND) + 1


class History:
    def __init__(self, clock: float | None = None) -> None:
        self.started = time.monotonic() if clock is None else clock
        self.steps: deque[SetPoint] = deque(maxlen=MAX_STEPS)
        self.stats: deque[Sample] = deque()
        self._last: dict[str, float] = {}

    def spec(self, spec: Spec, now: float | None = None) -> None:
        """A change put in force; one within a sample interval of the last kept replaces it
        (at that one's time): the chart shows the spec each sample saw last."""
        at = self._at(now)
        if len(self.steps) > 1 and at - self.steps[-1].at < 1.0 / SAMPLES_PER_SECOND:
            self.steps[-1] = SetPoint.of(spec, self.steps[-1].at)
        else:
            self.steps.append(SetPoint.of(spec, at))
        self._forget(at)

    def sample(self, stats: DirectionStats, now: float | None = None) -> None:
        """A stats report, kept if it is the first of its direction in 1/SAMPLES_PER_SECOND
        s, or if the one kept there measured no frame's delay and this one did (a worker's
        state report, sent between two reports, holds none: the history drew no delay);
        of it only the figures drawn (a report as decoded is ~20 times larger)."""
        at = self._at(now)
        slim = Sample.of(stats, at)
        if at - self._last.get(stats.direction, -1.0) < 1.0 / SAMPLES_PER_SECOND:
            self._replace_unmeasured(slim)
            return
        self._last[stats.direction] = at
        self.stats.append(slim)
        self._forget(at)

    def _replace_unmeasured(self, sample: Sample) -> None:
        """Put `sample` in place of its direction's last kept line if that one measured no
        delay and `sample` did (at its own time: the counters' rates stay right)."""
        if not sample.delay_samples:
            return
        for index in range(len(self.stats) - 1, max(-1, len(self.stats) - 5), -1):
            line = self.stats[index]
            if line.direction == sample.direction:
                if not line.delay_samples:
                    self.stats[index] = sample
                return

    def _at(self, now: float | None) -> float:
        return max(0.0, (time.monotonic() if now is None else now) - self.started)

    def _forget(self, at: float) -> None:
        """Drop what is older than HISTORY_SECONDS, but keep the spec in force then."""
        horizon = at - HISTORY_SECONDS
        while self.stats and self.stats[0].at < horizon:
            self.stats.popleft()
        while len(self.steps) > 1 and self.steps[1].at <= horizon:
            self.steps.popleft()
