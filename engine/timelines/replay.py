"""Replaying a timeline: a pure plan of (time, spec) events, and a runner that walks a
timeline on the real clock.

The plan is plain data from plain data, so ramps and cut-short steps are tested in virtual
time; the runner follows the same rules, but reads the steps as they come due (bounded
memory, whatever the length), folds those due together into one change (at most
MAX_CHANGES_PER_SECOND), and can be paused, resumed and stopped from another thread (the
TUI's timeline pane, the HTTP API). Its outcome is tested against the plan's.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from engine.model.errors import LinkshaperError
from engine.model.spec import Spec
from engine.timelines.ramps import interpolate
from engine.timelines.resolver import Resolver, step_failure
from engine.timelines.timeline import ResolvedStep, Step, StepSource, TimelineError

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
    error: str | None = None  # why the replay stopped early: `step N (at T s): reason`
    stopped: bool = False  # `stop` was called: no step comes any more
    looping: bool = False
    #: Timeline seconds played since the start, every cycle of a loop (`elapsed` is within
    #: the current cycle).
    played: float = 0.0

    @property
    def time_to_next(self) -> float | None:
        if self.next_at is None:
            return None
        return max(0.0, (self.next_at - self.elapsed) / self.speed)


#: Changes a replay makes at most a second. Steps due closer together than 1/100 s are
#: applied as one change, the spec their net effect gives: the engine sees a sane rate
#: whatever the timeline and the speed (a 1 ms loop at speed 1000 made ~480 changes a
#: second; the spec file and the log coalesce further, see daemon.coalescing), while steps
#: 10 ms apart, the finest a timeline is applied to (README), each still come on time.
#: Above RAMP_INTERVAL's 20 a second, so a ramp at speed 1 loses no value.
MAX_CHANGES_PER_SECOND = 100
MIN_CHANGE_GAP = 1.0 / MAX_CHANGES_PER_SECOND
#: Steps a replay reads at most a second (each costs a line's decoding and validation, tens
#: of microseconds): a looped timeline of a few steps at speed 1000 would otherwise keep a
#: core busy for ever. Beyond this the replay falls behind its schedule instead. Read as at
#: most MAX_STEPS_PER_CHANGE steps folded into each change.
MAX_STEPS_PER_SECOND = 5_000
MAX_STEPS_PER_CHANGE = MAX_STEPS_PER_SECOND // MAX_CHANGES_PER_SECOND


@dataclass
class _Ramp:
    start: Spec
    target: Spec
    at: float  # absolute timeline time (cycles included)
    length: float
    number: int

    @property
    def end(self) -> float:
        return self.at + self.length

    def at_time(self, t: float) -> Spec:
        return interpolate(self.start, self.target, (t - self.at) / self.length)


class ReplayRunner:
    """Walks a timeline against `clock`, calling `apply(spec)` when something is due.

    Steps are read as they come due (never held: memory stays bounded however long the
    timeline and however often it loops) and every step due at a wake-up is folded into one
    change, the spec applying them all gives; changes are at most MAX_CHANGES_PER_SECOND.
    A step that cannot be resolved, or that `apply` refuses (raises), stops the replay: the
    reason, naming the step, is in `status().error`, and `run` raises it."""

    def __init__(
        self,
        timeline: StepSource,
        apply: Callable[[Spec], object],
        base: Spec,
        *,
        speed: float = 1.0,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not MIN_SPEED <= speed <= MAX_SPEED:  # also NaN
            raise TimelineError(f"speed: must be from {MIN_SPEED} to {MAX_SPEED:g}, not {speed}")
        self.duration = timeline.duration
        if loop and self.duration <= 0:
            raise TimelineError(f"{timeline.name}: lasts 0 s, so there is nothing to loop")
        self.name = timeline.name
        self.total = timeline.step_count
        self._timeline: StepSource | None = timeline
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
        self._next_at: float | None = None  # absolute timeline time of the next step
        self._finished = False
        self._started = False
        self._error: str | None = None
        #: Changes applied so far (each may fold several steps), for status and tests.
        self.changes = 0

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

    @property
    def error(self) -> str | None:
        return self._error

    def status(self) -> ReplayStatus:
        with self._wake:
            now = self._paused_at if self._paused_at is not None else self.clock()
            offset = self._cycle * self.duration
            elapsed = played = 0.0
            if self._started:
                played = max(0.0, (now - self._origin) * self.speed)
                elapsed = max(0.0, played - offset)
            next_at = None if self._next_at is None else self._next_at - offset
            return ReplayStatus(
                position=self._position,
                total=self.total,
                cycle=self._cycle,
                elapsed=elapsed,
                next_at=next_at,
                paused=self._paused_at is not None,
                finished=self._finished,
                speed=self.speed,
                error=self._error,
                stopped=self._stopped,
                looping=self.loop,
                played=played,
            )

    # --- the walk --------------------------------------------------------------------

    def _wait_until(self, timeline_at: float, not_before: float) -> bool:
        """Until timeline time `timeline_at` (pauses extend the wait) and clock time
        `not_before`; False if stopped."""
        with self._wake:
            while not self._stopped:
                if self._paused_at is not None:
                    self._wake.wait()
                    continue
                due = max(self._origin + timeline_at / self.speed, not_before)
                remaining = due - self.clock()
                if remaining <= 0:
                    return True
                self._wake.wait(remaining)
            return False

    def _steps(self) -> Generator[tuple[int, int, float, Step]]:
        """(cycle, step number, absolute timeline time, step), cycle after cycle if looping."""
        cycle = 0
        while self._timeline is not None:
            for number, step in enumerate(self._timeline.iter_steps(), start=1):
                yield cycle, number, cycle * self.duration + step.at, step
            if not self.loop:
                return
            cycle += 1

    def run(self) -> None:
        """Apply the timeline on time, until its end (or for ever if looping) or `stop`."""
        steps = self._steps()
        resolver = Resolver(self.base)
        ramp: _Ramp | None = None
        last: tuple[int, float] = (0, 0.0)  # number and time of the last step read
        last_change = -math.inf
        try:
            upcoming = next(steps, None)
            with self._wake:
                self._origin = self.clock()
                self._started = True
            sampled = 0.0
            while True:
                self._next_at = None if upcoming is None else upcoming[2]
                wake_at = math.inf if upcoming is None else upcoming[2]
                if ramp is not None:
                    ticks = math.floor((sampled - ramp.at) / RAMP_INTERVAL) + 1
                    wake_at = min(wake_at, ramp.at + ticks * RAMP_INTERVAL, ramp.end)
                if wake_at == math.inf:
                    return
                if not self._wait_until(wake_at, last_change + MIN_CHANGE_GAP):
                    return
                woke = self.clock()
                now = (woke - self._origin) * self.speed
                sampled = now
                read = 0
                while upcoming is not None and upcoming[2] <= now:
                    if read >= MAX_STEPS_PER_CHANGE:  # behind: the state as far as read
                        sampled = upcoming[2]
                        break
                    cycle, number, at, step = upcoming
                    if cycle != self._cycle:
                        self._cycle, self._position = cycle, 0
                    ramp = self._absorb(resolver, ramp, number, at, step)
                    last = (number, at)
                    read += 1
                    upcoming = next(steps, None)
                if ramp is not None and sampled >= ramp.end:
                    ramp = None
                spec = resolver.spec() if ramp is None else ramp.at_time(sampled)
                try:
                    self.apply(spec)
                except Exception as exc:  # raised as it is (the TUI tells a ControlError)
                    self._error = str(step_failure(*last, exc))
                    raise
                self._position = last[0] - (ramp is not None)
                self.changes += 1
                last_change = woke
        except Exception as exc:
            if self._error is None:  # not a refused change: a step that does not resolve
                self._error = self._failure(exc)
            raise
        finally:
            steps.close()
            self._next_at = None
            self._finished = True
            self._timeline = None  # nothing of the timeline is held once it is over

    def _failure(self, exc: Exception) -> str:
        """What stopped the replay, for its status: our own errors say it in a line already."""
        if isinstance(exc, LinkshaperError):
            return str(exc)
        return f"{self.name}: cannot be replayed ({type(exc).__name__}: {exc})"

    def _absorb(
        self, resolver: Resolver, ramp: _Ramp | None, number: int, at: float, step: Step
    ) -> _Ramp | None:
        """One step read: the resolver takes it; a ramping step starts from where the state
        is at its time (partway along a ramp it interrupts). The ramp in progress after."""
        if step.ramp <= 0:
            resolver.add(step, number)
            return None
        start = resolver.spec() if ramp is None else ramp.at_time(at)
        resolver.add(step, number)
        return _Ramp(start, resolver.spec(), at, step.ramp, number)
