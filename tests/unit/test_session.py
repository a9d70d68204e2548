"""The session's state without a screen (issue 35: session state in a plain module): the one
undo and redo history every change goes on, and which specs stop the link. Nothing here
imports Textual, and neither does `shaper_tui.session` (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

from engine.model.spec import Spec
from engine.model.spec_patch import patch_spec
from shaper_tui.session import COALESCE_SECONDS, Change, Session, UndoHistory, newly_stopped
from shaper_tui.undo_fields import field_name, take_back


def spec_with(**changes: object) -> Spec:
    return patch_spec(Spec(), dict(changes))


def test_the_session_module_runs_without_textual() -> None:
    code = (
        "import sys, shaper_tui.session as s; s.Session(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_undo_and_redo_set_only_the_fields_the_change_changed() -> None:
    """Issue NEWUSER22 item 1: `u` put back the whole spec before the change, so a change
    another client made meanwhile was thrown away."""
    history = UndoHistory()
    a, b = Spec(), spec_with(**{"ingress.loss": 0.01})
    history.record(Change("Download Loss", a, "ingress.loss", 0.0, "0 %", "1 %", after=b))
    meanwhile = patch_spec(b, {"egress.latency": 80})  # by the CLI
    undone = history.undo(meanwhile)
    assert undone is not None and undone.undone() == "Download Loss back to 0 %"
    values, moved = take_back(undone.fields, meanwhile, forward=False)
    assert values == {"default_link.ingress.loss": 0.0} and moved == []
    assert patch_spec(meanwhile, values).link("egress").latency == 80
    redone = history.redo()
    assert redone is undone and redone.redone() == "Download Loss 1 % again"
    # The field itself changed since by someone else: left alone, and named.
    theirs = patch_spec(b, {"ingress.loss": 0.05})
    values, moved = take_back(redone.fields, theirs, forward=False)
    assert values == {} and [field_name(p) for p in moved] == ["Download Loss"]


def test_a_preset_takes_back_only_its_fields() -> None:
    before = spec_with(**{"egress.rate": 3_000_000})
    after = patch_spec(before, {"ingress.latency": 35, "egress.latency": 35})
    change = Change("preset X", before, after=after)
    assert set(change.fields) == {"default_link.ingress.latency", "default_link.egress.latency"}
    now = patch_spec(after, {"egress.latency": 80, "ingress.rate": 1_000_000})
    values, moved = take_back(change.fields, now, forward=False)
    assert values == {"default_link.ingress.latency": 0.0}
    assert moved == ["default_link.egress.latency"]


def test_a_burst_that_ends_where_it_began_is_not_kept() -> None:
    """Issue NEWUSER22 item 11: ten → then ten ← left `Undone: … 5 ms → 5 ms`."""
    history = UndoHistory()
    start, up = Spec(), spec_with(**{"ingress.latency": 10})
    history.record(Change("Download Latency", start, "ingress.latency", 0.0, "0", "10", up))
    assert history.can_undo
    kept = history.record(Change("Download Latency", up, "ingress.latency", 0.5, "10", "0", start))
    assert kept is None and not history.can_undo


def test_a_new_change_clears_what_could_be_redone() -> None:
    history = UndoHistory()
    history.record(Change("block", Spec(), at=0.0, after=spec_with(**{"egress.rate": 0})))
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
        after = spec_with(**{"ingress.loss": (i + 1) / 100})
        old, new = f"{i} %", f"{i + 1} %"
        history.record(Change("Download Loss", spec, "ingress.loss", i * 0.5, old, new, after))
    rate = spec_with(**{"egress.rate": 1000})
    history.record(Change("Upload Rate", Spec(), "egress.rate", 2.6, "a", "b", rate))
    late = 2.6 + COALESCE_SECONDS + 0.1
    history.record(Change("Upload Rate", rate, "egress.rate", late, "b", "c", spec))
    assert history.undo(Spec()) is not None  # the late one, alone
    assert history.undo(Spec()) is not None  # the first on the upload rate
    burst = history.undo(Spec())
    assert burst is not None and burst.before == first
    assert burst.undone() == "Download Loss back to 0 %"
    assert burst.redone() == "Download Loss 5 % again"
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
    assert newly_stopped(before, spec_with(**{"ingress.loss": 1.0})) == "Download"
    blocked = spec_with(**{"egress.rate": 0})
    assert newly_stopped(before, blocked) == "Upload"
    # Already stopped the same way: nothing new to confirm.
    assert newly_stopped(blocked, spec_with(**{"egress.rate": 0, "egress.loss": 0.1})) == ""
    # Random and bursty loss together, as the Loss control shows their sum.
    bursty = {"p_enter": 1.0, "p_exit": 1.0, "loss_in_burst": 1.0, "loss_outside": 0.0}
    both = spec_with(**{"ingress.burst_loss": bursty, "ingress.loss": 0.5})
    assert newly_stopped(before, both) == "Download"
    # Issue NEWUSER22 item 2: a bursty loss of 99 % (what End sets) lets next to nothing
    # through; so does an outage down 99 % of its cycle.
    stalled = {"p_enter": 1.0, "p_exit": 1 / 99, "loss_in_burst": 1.0, "loss_outside": 0.0}
    assert newly_stopped(before, spec_with(**{"ingress.burst_loss": stalled})) == "Download"
    outage = {"period": 1000, "down": 995, "mode": "blocked"}
    assert newly_stopped(before, spec_with(**{"egress.outage": outage})) == "Upload"
    outage = {"period": 1000, "down": 500, "mode": "blocked"}
    assert newly_stopped(before, spec_with(**{"egress.outage": outage})) == ""


def test_a_session_starts_on_pass_through_with_nothing_to_undo() -> None:
    session = Session()
    assert session.spec == Spec() and not session.history.can_undo
    assert session.recorder is None and session.runner is None and session.capture == ""
