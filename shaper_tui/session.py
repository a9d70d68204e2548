"""What a TUI session holds apart from its screen: the spec in force, the undo and redo
history, the recorder, the capture and the replay. Plain Python (no Textual), so that what
`u`, `U` and a confirmation do is tested without a terminal (tests/unit/test_session.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.model.spec import DIRECTIONS, PASS_THROUGH, Direction, Spec
from shaper_tui.link_edits import mean_loss

if TYPE_CHECKING:
    from engine.timelines.recorder import TimelineRecorder
    from engine.timelines.replay import ReplayRunner

#: How many changes `u` can go back through (and `U` forward again).
UNDO_STEPS = 50
#: Changes to one control each within this many seconds of the one before are one undo step:
#: ten presses of → are undone with one `u`.
COALESCE_SECONDS = 2.0
#: How the two directions are named on screen.
SHORT_NAMES: dict[Direction, str] = {"ingress": "Download", "egress": "Upload"}


@dataclass
class Change:
    """One undo step: what was done, and the spec in force before it. `after` is the spec in
    force when it was undone (what redo puts back); `old` and `new` are a control's values as
    shown, for the toast."""

    what: str
    before: Spec
    key: str | None = None
    at: float = 0.0
    old: str = ""
    new: str = ""
    after: Spec | None = None

    def describe(self) -> str:
        return f"{self.what} {self.old} → {self.new}" if self.old or self.new else self.what


class UndoHistory:
    """One history of every change, newest last: `undo` hands back the spec to put in force,
    `redo` the one that undo replaced. A new change clears what could be redone."""

    def __init__(self, limit: int = UNDO_STEPS) -> None:
        self._done: deque[Change] = deque(maxlen=limit)
        self._undone: deque[Change] = deque(maxlen=limit)
        #: Whether the newest entry may take the next change to its control into it.
        self._open = False

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    def record(self, change: Change) -> Change:
        """Keep `change`; merged into the newest one when it is the next of a burst on the
        same control (same key, within COALESCE_SECONDS of it, nothing undone between)."""
        self._undone.clear()
        last = self._done[-1] if self._done else None
        if (
            self._open
            and last is not None
            and change.key is not None
            and change.key == last.key
            and change.at - last.at <= COALESCE_SECONDS
        ):
            last.new, last.at = change.new, change.at
            return last
        self._done.append(change)
        self._open = True
        return change

    def undo(self, current: Spec) -> Change | None:
        """The newest change, taken off (its `before` is to be put in force), or None."""
        if not self._done:
            return None
        change = self._done.pop()
        change.after = current
        self._undone.append(change)
        self._open = False
        return change

    def redo(self, current: Spec) -> Change | None:
        """The newest undone change, back on (its `after` is to be put in force), or None."""
        if not self._undone:
            return None
        change = self._undone.pop()
        change.before = current
        self._done.append(change)
        self._open = False
        return change


def stopping(spec: Spec) -> set[str]:
    """What in `spec` lets nothing through a direction of the default link, in words. (An
    outage as long as its period is no spec: the model refuses it, and the TUI says so.)"""
    reasons: set[str] = set()
    for direction in DIRECTIONS:
        link = spec.link(direction)
        name = SHORT_NAMES[direction]
        if link.rate <= 0:
            reasons.add(f"{name} blocked (rate 0)")
        if mean_loss(link) >= 1:
            reasons.add(f"{name} loss 100 %")
    return reasons


def newly_stopped(before: Spec, after: Spec) -> str:
    """Why `after` stops the link where `before` did not ("" if it does not): such a change
    is confirmed first."""
    return "; ".join(sorted(stopping(after) - stopping(before)))


@dataclass
class Session:
    """The state every part of the app reads and writes."""

    spec: Spec = PASS_THROUGH
    history: UndoHistory = field(default_factory=UndoHistory)
    recorder: TimelineRecorder | None = None
    runner: ReplayRunner | None = None
    #: The file a capture is written to, or "".
    capture: str = ""
    last_recording: Path | None = None
    #: The rates in force before `b` blocked the link, for unblocking.
    unblocked_rates: dict[Direction, int] = field(default_factory=dict)
