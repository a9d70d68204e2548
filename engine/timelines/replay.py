"""Replaying a timeline: a pure plan of (time, spec) events, and a runner that walks it on
the real clock.

The plan is plain data from plain data, so ramps and cut-short steps are tested in virtual
time; the runner only waits, applies, and can be paused, resumed and stopped from another
thread (the TUI's timeline pane, the HTTP API).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from engine.model.spec import Spec
from engine.timelines.timeline import ResolvedStep, Timeline, TimelineError, interpolate

#: Intermediate values of a ramp go out this often (the issue asks for at least 10 a second).
RAMP_INTERVAL = 0.05

#: Replay speeds taken: beyond 1000x, steps would be applied as fast as the engine takes them
#: (and `inf` would apply them all at once); below, a timeline would never end.
MIN_SPEED, MAX_SPEED = 0.001, 1000.0


@dataclass(frozen=True)
class Event:
    at: float  # seconds on the timeline
    spec: Spec
    step: int  # index of the step it belongs to
    final: bool  # the step's own values (not a ramp's intermediate)


def plan(steps: list[ResolvedStep], base: Spec, interval: float = RAMP_INTERVAL) -> Iterator[Event]:
    """Every spec to apply and when. A ramp that the next step interrupts ends where it got to."""
    current = base
    for index, step in enumerate(steps):
        next_at = steps[index + 1].at if index + 1 < len(steps) else math.inf
        if step.ramp <= 0:
            yield Event(step.at, step.spec, index, True)
            current = step.spec
            continue
        end = step.at + step.ramp
        stop = min(end, next_at)
        k = 0
        while (t := step.at + k * interval) < stop - 1e-9:
            yield Event(t, interpolate(current, step.spec, (t - step.at) / step.ramp), index, False)
            k += 1
        if end <= next_at:
            yield Event(end, step.spec, index, True)
            current = step.spec
        else:
            current = interpolate(current, step.spec, (next_at - step.at) / step.ramp)


@dataclass(frozen=True)
class ReplayStatus:
    position: int  # steps applied in this cycle
    total: int
    cycle: int
    elapsed: float  # timeline seconds
    next_at: float | None  # timeline time of the next step, None at the end
    paused: bool
    finished: bool
    speed: float

    @property
    def time_to_next(self) -> float | None:
        if self.next_at is None:
            return None
        return max(0.0, (self.next_at - self.elapsed) / self.speed)


class ReplayRunner:
    """Walks a timeline's plan against `clock`, calling `apply(spec)` at each event."""

    def __init__(
        self,
        timeline: Timeline,
        apply: Callable[[Spec], object],
        base: Spec,
        *,
        speed: float = 1.0,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not MIN_SPEED <= speed <= MAX_SPEED:  # also NaN
            raise TimelineError(f"speed: must be from {MIN_SPEED} to {MAX_SPEED:g}, not {speed}")
        if loop and timeline.duration <= 0:
            raise TimelineError(f"{timeline.name}: lasts 0 s, so there is nothing to loop")
        self.timeline = timeline
        self.steps = timeline.resolve(base)  # every step checked before anything is applied
        self.apply = apply
        self.base = base
        self.speed = speed
        self.loop = loop
        self.clock = clock
        self._wake = threading.Condition()
        self._paused_at: float | None = None
        self._stopped = False
        self._origin = 0.0
        self._position = 0
        self._cycle = 0
        self._finished = False
        self._started = False
        self.applied: list[tuple[float, Event]] = []  # (clock time, event), for tests and logs

    # --- control from other threads -------------------------------------------------

    def pause(self) -> None:
        with self._wake:
            if self._paused_at is None:
                self._paused_at = self.clock()
            self._wake.notify_all()

    def resume(self) -> None:
        with self._wake:
            if self._paused_at is not None:
                self._origin += self.clock() - self._paused_at
                self._paused_at = None
            self._wake.notify_all()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()

    @property
    def origin(self) -> float:
        """The clock time that timeline time 0 corresponds to (moved on by pauses)."""
        return self._origin

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def status(self) -> ReplayStatus:
        with self._wake:
            now = self._paused_at if self._paused_at is not None else self.clock()
            elapsed = max(0.0, (now - self._origin) * self.speed) if self._started else 0.0
            upcoming = [s.at for s in self.steps[self._position :]]
            return ReplayStatus(
                position=self._position,
                total=len(self.steps),
                cycle=self._cycle,
                elapsed=elapsed,
                next_at=upcoming[0] if upcoming else None,
                paused=self._paused_at is not None,
                finished=self._finished,
                speed=self.speed,
            )

    # --- the walk --------------------------------------------------------------------

    def _wait_until(self, timeline_at: float) -> bool:
        """Until the event is due (pauses extend the wait); False if stopped."""
        with self._wake:
            while not self._stopped:
                if self._paused_at is not None:
                    self._wake.wait()
                    continue
                remaining = self._origin + timeline_at / self.speed - self.clock()
                if remaining <= 0:
                    return True
                self._wake.wait(remaining)
            return False

    def run(self) -> None:
        current = self.base
        self._origin = self.clock()
        self._started = True
        try:
            while True:
                self._position = 0
                for event in plan(self.steps, current):
                    if not self._wait_until(event.at):
                        return
                    self.apply(event.spec)
                    self.applied.append((self.clock(), event))
                    current = event.spec
                    if event.final:
                        self._position = event.step + 1
                if not self.loop:
                    return
                self._origin += self.timeline.duration / self.speed
                self._cycle += 1
                self.steps = self.timeline.resolve(current)
        finally:
            self._finished = True
