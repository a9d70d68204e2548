"""The last minutes of the engine's stats and spec changes, kept by the TUI for its history
screen: the same timeline a recording holds, so the screen draws it with `linkshaper plot`'s
chart (engine.timelines.plot)."""

from __future__ import annotations

import time
from collections import deque

from engine.model.spec import Spec
from engine.model.stats import DirectionStats
from engine.timelines.timeline import SpecStep, StatsLine, Step, Timeline

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
        self.steps: deque[SpecStep] = deque(maxlen=MAX_STEPS)
        self.stats: deque[StatsLine] = deque()
        self._last: dict[str, float] = {}

    def spec(self, spec: Spec, now: float | None = None) -> None:
        """A change put in force, its default link (what the chart draws); one within a
        sample interval of the last kept replaces it (at that one's time): the chart shows
        the spec each sample saw last."""
        at = self._at(now)
        # Only the default link is drawn: its flows (5,000 of them held 40 MB a change) are not
        # kept; the default link is the spec's own object, shared, not copied.
        spec = spec.model_copy(update={"flows": []}) if spec.flows else spec
        if len(self.steps) > 1 and at - self.steps[-1].at < 1.0 / SAMPLES_PER_SECOND:
            self.steps[-1] = SpecStep(at=self.steps[-1].at, spec=spec)
        else:
            self.steps.append(SpecStep(at=at, spec=spec))
        self._forget(at)

    def sample(self, stats: DirectionStats, now: float | None = None) -> None:
        """A stats report, kept if it is the first of its direction in 1/SAMPLES_PER_SECOND
        s, or if the one kept there measured no frame's delay and this one did (a worker's
        state report, sent between two reports, holds none: the history drew no delay);
        without flows and talkers (the chart draws totals)."""
        at = self._at(now)
        slim = stats.model_copy(update={"flows": {}, "top_talkers": []})
        if at - self._last.get(stats.direction, -1.0) < 1.0 / SAMPLES_PER_SECOND:
            self._replace_unmeasured(slim, at)
            return
        self._last[stats.direction] = at
        self.stats.append(StatsLine(at=at, stats=slim))
        self._forget(at)

    def _replace_unmeasured(self, stats: DirectionStats, at: float) -> None:
        """Put `stats` in place of its direction's last kept line if that one measured no
        delay and `stats` did (at its own time: the counters' rates stay right)."""
        if not stats.delay_samples:
            return
        for index in range(len(self.stats) - 1, max(-1, len(self.stats) - 5), -1):
            line = self.stats[index]
            if line.stats.direction == stats.direction:
                if not line.stats.delay_samples:
                    self.stats[index] = StatsLine(at=at, stats=stats)
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

    def timeline(self) -> Timeline:
        """What is kept, its times from the oldest sample on (the chart's x axis)."""
        origin = self.stats[0].at if self.stats else 0.0
        steps: list[Step] = [
            s.model_copy(update={"at": max(0.0, s.at - origin)}) for s in self.steps
        ]
        lines = [s.model_copy(update={"at": s.at - origin}) for s in self.stats]
        return Timeline(steps=steps, stats=lines, name="the last minutes")
