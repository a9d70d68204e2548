"""What a TUI session holds apart from its screen: the spec in force, the undo and redo
history, the recorder, the capture and the replay. Plain Python (no Textual), so that what
`u`, `U` and a confirmation do is tested without a terminal (tests/unit/test_session.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.model.spec import DIRECTIONS, PASS_THROUGH, Direction, LinkSpec, Spec
from shaper_tui.link_edits import mean_loss
from shaper_tui.undo_fields import FieldChanges, field_changes

if TYPE_CHECKING:
    from engine.timelines.recorder import TimelineRecorder
    from engine.timelines.replay import ReplayRunner

#: How many changes `u` can go back through (and `U` forward again).
UNDO_STEPS = 50
#: Steps on one control each within this many seconds of the one before are one undo step:
#: ten presses of → are undone with one `u` (a typed value is a step of its own: key None).
COALESCE_SECONDS = 2.0
#: A loss (or an outage's share of down time) from which next to nothing gets through: a
#: TCP connection stalls. The TUI's bursty loss tops out here (BURSTY_MAX_LOSS).
STOPPING_SHARE = 0.99
#: How the two directions are named on screen.
SHORT_NAMES: dict[Direction, str] = {"ingress": "Download", "egress": "Upload"}


@dataclass
class Change:
    """One undo step: what was done, the spec in force before it and the one it made (None for
    a replay until it is undone: whatever it set by then). Undo and redo set only the fields
    that differ between the two (`fields`); `old` and `new` are a control's values as shown,
    for the toast."""

    what: str
    before: Spec
    key: str | None = None
    at: float = 0.0
    old: str = ""
    new: str = ""
    after: Spec | None = None

    @property
    def fields(self) -> FieldChanges:
        return {} if self.after is None else field_changes(self.before, self.after)

    def undone(self) -> str:
        """What the toast says was undone: the control is back to its old value."""
        return f"{self.what} back to {self.old}" if self.old or self.new else self.what

    def redone(self) -> str:
        return f"{self.what} {self.new} again" if self.old or self.new else self.what


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

    def record(self, change: Change) -> Change | None:
        """Keep `change`; merged into the newest one when it is the next of a burst on the
        same control (same key, within COALESCE_SECONDS of it, nothing undone between). One
        that in the end changes nothing (ten → and ten ←) is not kept: None."""
        self._undone.clear()
        last = self._done[-1] if self._done else None
        if (
            self._open
            and last is not None
            and change.key is not None
            and change.key == last.key
            and change.at - last.at <= COALESCE_SECONDS
        ):
            last.new, last.at, last.after = change.new, change.at, change.after
            change = self._done.pop()
        if change.after is not None and not change.fields:
            self._open = False
            return None
        self._done.append(change)
        self._open = True
        return change

    def undo(self, current: Spec) -> Change | None:
        """The newest change, taken off (the fields it changed are to be set back), or None."""
        if not self._done:
            return None
        change = self._done.pop()
        if change.after is None:
            change.after = current  # a replay: what it set by now
        self._undone.append(change)
        self._open = False
        return change

    def drop(self, change: Change) -> None:
        """Forget `change` (one that can no longer be undone or redone)."""
        for steps in (self._done, self._undone):
            if change in steps:
                steps.remove(change)

    def redo(self) -> Change | None:
        """The newest undone change, back on (its fields are to be set again), or None."""
        if not self._undone:
            return None
        change = self._undone.pop()
        self._done.append(change)
        self._open = False
        return change


def stopping(link: LinkSpec, share: float = STOPPING_SHARE) -> set[str]:
    """How `link` lets nothing through in effect: rate 0, a loss (random, bursty or both: its
    long-run mean) of `share` or more, an outage down that share of its cycle. The one
    test every change from the TUI passes (see `newly_stopped`); with `share` 1, the ways it
    lets nothing through at all."""
    ways: set[str] = set()
    if link.rate <= 0:
        ways.add("rate")
    if mean_loss(link) >= share:
        ways.add("loss")
    outage = link.outage
    if outage is not None and outage.period is not None and outage.down is not None:
        down, cycle = outage.down, outage.period
    elif outage is not None and outage.mean_up is not None and outage.mean_down is not None:
        down, cycle = outage.mean_down, outage.mean_up + outage.mean_down
    else:
        return ways
    if down >= share * cycle:
        ways.add("outage")
    return ways


def newly_stopped(before: Spec, after: Spec, share: float = STOPPING_SHARE) -> str:
    """The directions `after` stops in a way `before` did not, as "Download", "Upload" or
    "Download and Upload" ("" if none): such a change is confirmed first."""
    names = [
        SHORT_NAMES[d]
        for d in DIRECTIONS
        if stopping(after.link(d), share) - stopping(before.link(d), share)
    ]
    return " and ".join(names)


def stop_question(doing: str, before: Spec, after: Spec) -> str:
    """The question a change that stops the link asks ("" if it stops none): nothing gets
    through where it stops the link wholly (rate 0, 100 % loss), almost nothing where it
    only comes close (99.96 % loss: a TCP connection stalls all the same)."""
    stops = newly_stopped(before, after)
    if not stops:
        return ""
    wholly = newly_stopped(before, after, share=1.0) == stops
    how = "Nothing" if wholly else "Almost nothing"
    return f"{doing}? {how} gets through {stops} then."


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
    #: Who last changed each field path, for the fields other clients changed (an undo that
    #: leaves such a field alone names them).
    changed_by: dict[str, str] = field(default_factory=dict)
    #: The rates in force before `b` blocked the link, for unblocking.
    unblocked_rates: dict[Direction, int] = field(default_factory=dict)
