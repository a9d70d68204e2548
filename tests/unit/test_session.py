"""The session's state without a screen (issue 35: session state in a plain module): the one
undo and redo history every change goes on, and which specs stop the link. Nothing here
imports Textual, and neither does `shaper_tui.session` (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

from engine.model.spec import Spec
from engine.model.spec_patch import patch_spec
from shaper_tui.session import COALESCE_SECONDS, Change, Session, UndoHistory, newly_stopped


def spec_with(**changes: object) -> Spec:
    return patch_spec(Spec(), dict(changes))


def test_the_session_module_runs_without_textual() -> None:
    code = (
        "import sys, shaper_tui.session as s; s.Session(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_undo_gives_back_each_spec_before_and_redo_each_after() -> None:
    history = UndoHistory()
    a, b, c = Spec(), spec_with(**{"ingress.loss": 0.01}), spec_with(**{"ingress.latency": 75})
    history.record(Change("Download Loss", a, key="ingress.loss", at=0.0, old="0 %", new="1 %"))
    history.record(Change("preset X", b, at=1.0))
    undone = history.undo(c)
    assert undone is not None and undone.before == b and undone.describe() == "preset X"
    undone = history.undo(b)
    assert undone is not None and undone.before == a
    assert undone.describe() == "Download Loss 0 % → 1 %"
    assert not history.can_undo and history.undo(a) is None
    redone = history.redo(a)
    assert redone is not None and redone.after == b
    redone = history.redo(b)
    assert redone is not None and redone.after == c and not history.can_redo


def test_a_new_change_clears_what_could_be_redone() -> None:
    history = UndoHistory()
    history.record(Change("block", Spec(), at=0.0))
    history.undo(Spec())
    assert history.can_redo
    history.record(Change("reset", Spec(), at=1.0))
    assert not history.can_redo


def test_a_burst_on_one_control_is_one_step() -> None:
    """Each change within COALESCE_SECONDS of the one before, on the same control: one entry,
    from the first value to the last; another control, a pause or an undo starts a new one."""
    history = UndoHistory()
    first = Spec()
    for i in range(5):
        spec = spec_with(**{"ingress.loss": i / 100})
        old, new = f"{i} %", f"{i + 1} %"
        history.record(Change("Download Loss", spec, "ingress.loss", i * 0.5, old, new))
    history.record(Change("Upload Rate", Spec(), key="egress.rate", at=2.6, old="a", new="b"))
    late = 2.6 + COALESCE_SECONDS + 0.1
    history.record(Change("Upload Rate", Spec(), key="egress.rate", at=late, old="b", new="c"))
    assert history.undo(Spec()) is not None  # the late one, alone
    assert history.undo(Spec()) is not None  # the first on the upload rate
    burst = history.undo(Spec())
    assert burst is not None and burst.before == first
    assert burst.describe() == "Download Loss 0 % → 5 %"
    assert not history.can_undo


def test_the_history_keeps_its_last_steps_only() -> None:
    history = UndoHistory(limit=3)
    for i in range(5):
        history.record(Change(f"preset {i}", Spec(), at=float(i)))
    kept = [history.undo(Spec()) for _ in range(4)]
    assert [c.what for c in kept if c is not None] == ["preset 4", "preset 3", "preset 2"]


def test_what_stops_the_link_is_named_once_it_does() -> None:
    before = Spec()
    assert newly_stopped(before, spec_with(**{"ingress.loss": 0.5})) == ""
    assert newly_stopped(before, spec_with(**{"ingress.loss": 1.0})) == "Download loss 100 %"
    blocked = spec_with(**{"egress.rate": 0})
    assert newly_stopped(before, blocked) == "Upload blocked (rate 0)"
    # Already stopped the same way: nothing new to confirm.
    assert newly_stopped(blocked, spec_with(**{"egress.rate": 0, "egress.loss": 0.1})) == ""
    # Random and bursty loss together, as the Loss control shows their sum.
    bursty = {"p_enter": 1.0, "p_exit": 1.0, "loss_in_burst": 1.0, "loss_outside": 0.0}
    both = spec_with(**{"ingress.burst_loss": bursty, "ingress.loss": 0.5})
    assert newly_stopped(before, both) == "Download loss 100 %"


def test_a_session_starts_on_pass_through_with_nothing_to_undo() -> None:
    session = Session()
    assert session.spec == Spec() and not session.history.can_undo
    assert session.recorder is None and session.runner is None and session.capture == ""
