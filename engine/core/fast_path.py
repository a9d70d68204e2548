"""When the kernel may forward a direction instead of its worker (the fast path, issue 38).

A direction whose one link sets nothing costs a worker a core to copy frames it leaves as they
are; tc's `mirred` redirect between the two interfaces does the same at the kernel's speed.
The kernel may forward only while nothing the engine does would differ: one link (no flow
rules: their counters need the engine) transparent and holding nothing, no staged plan
still being built, no capture (it needs every frame's fate), and no flush just asked for.
The engine takes over at once when any of that stops being so, and hands back only once it
has held for HAND_BACK_AFTER (so a spec that flips back and forth is not switched on every
change). Pure: the worker asks with the clock's reading, and does the switching
(engine.daemon.worker.fast_path).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The direction must have been transparent this long (seconds) before the kernel forwards it.
HAND_BACK_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class DirectionState:
    """What the decision reads of a direction's pipeline at one moment."""

    #: Every link in force forwards at once and changes nothing.
    transparent: bool
    #: Nothing held anywhere (no frame a changed link still has to let go).
    idle: bool
    #: A staged plan is being built (its links may impair: the engine forwards meanwhile).
    building: bool
    #: A capture runs on the direction.
    capturing: bool
    #: One link takes every frame (no flow rules): tc's one counter is that link's. (A spec
    #: with flow rules, transparent or not, stays with the engine, which counts each flow.)
    one_link: bool = True


def engine_needed(state: DirectionState) -> bool:
    """Whether the worker must forward the direction itself now."""
    return (
        not state.transparent
        or not state.idle
        or state.building
        or state.capturing
        or not state.one_link
    )


class FastPathClock:
    """Says, each time it is asked, whether the kernel should forward the direction: only once
    the engine has not been needed, nor a flush asked for, for `hand_back_after` seconds."""

    def __init__(self, hand_back_after: float = HAND_BACK_AFTER) -> None:
        self.hand_back_after = hand_back_after
        #: Since when the engine has not been needed (None: it is needed now).
        self.quiet_since: float | None = None

    def kernel_forwards(self, state: DirectionState, now: float, flushed: bool = False) -> bool:
        """The decision at `now` (seconds, any clock that only goes forward); `flushed`: a flush
        was asked for this direction just now, which only the engine can do."""
        if flushed or engine_needed(state):
            self.quiet_since = None
            return False
        if self.quiet_since is None:
            self.quiet_since = now
        return now - self.quiet_since >= self.hand_back_after


__all__ = ["HAND_BACK_AFTER", "DirectionState", "FastPathClock", "engine_needed"]
