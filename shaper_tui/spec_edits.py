"""The user's changes to the spec: a control moved, a preset, block and unblock, reset, undo,
redo and flush. Each is sent through the engine link, and the controls show it at once; each
goes on the session's one undo history, and one that stops the link is confirmed first."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.model.presets import Preset
from engine.model.spec import DIRECTIONS, PASS_THROUGH, UNLIMITED_RATE, Direction, Spec, SpecError
from engine.model.spec_patch import patch_spec as apply_patch
from shaper_tui.app_state import ShaperState
from shaper_tui.link_edits import Field, changes_for, shown_value
from shaper_tui.screens.confirm import ConfirmScreen
from shaper_tui.screens.presets import PresetsScreen
from shaper_tui.session import SHORT_NAMES, Change, stop_question
from shaper_tui.undo_fields import field_name, take_back, with_values
from shaper_tui.widgets.direction_panel import NAMES, DirectionPanel
from shaper_tui.widgets.value_slider import ValueSlider

#: Said instead of sending a change while no engine is attached: the controls keep the spec.
NOT_ATTACHED = "not attached to an engine: nothing was changed"


class SpecEdits(ShaperState):
    """The actions that change the spec."""

    def _attached_or_say(self) -> bool:
        """Whether there is an engine to change; if not, say so and show the spec unchanged
        (a control that moved goes back: it never shows what is not in force)."""
        if self.link.attached:
            return True
        self.notify(NOT_ATTACHED, title="Not applied", severity="error", timeout=4)
        self._show_spec(self.spec)
        return False

    def _shown(self, direction: Direction, field: Field, spec: Spec) -> str:
        control = self.panels[direction].controls[field]
        value = shown_value(spec.link(direction), field)
        if isinstance(control, ValueSlider) and isinstance(value, float):
            return control.scale.format(value)
        return str(value)

    def _edit(
        self, direction: Direction, field: Field, value: float | str, step: bool = True
    ) -> None:
        if not self._attached_or_say():
            return
        changes = changes_for(direction, field, value, self.spec.link(direction))
        try:
            after = apply_patch(self.spec, changes)
        except SpecError:
            after = None  # the engine's gate says why (see _patch)
        what = f"{SHORT_NAMES[direction]} {NAMES[field]}"
        old = self._shown(direction, field, self.spec)
        new = self._shown(direction, field, after) if after is not None else str(value)

        def commit(confirmed: bool) -> None:
            if after is not None:  # one the gate refuses changes nothing: nothing to undo
                # A confirmed change, a typed value or a pick is an undo step of its own,
                # never part of a burst of steps.
                key = None if confirmed or not step else f"{direction}.{field}"
                self._remember(what, after, key=key, old=old, new=new)
            self._patch(changes)

        self._confirm_if_stopping(after, f"{what} {new}", commit)

    def _confirm_if_stopping(
        self, after: Spec | None, doing: str, go: Callable[[bool], None]
    ) -> None:
        """Run `go` (told whether it was asked), after a yes if `after` lets nothing through
        where the spec in force does; a no leaves the controls on the spec in force."""
        question = stop_question(doing, self.spec, after) if after is not None else ""
        if not question:
            go(False)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                go(True)
            else:
                self._show_spec(self.spec)

        # The question names the value; until a yes, the control shows what is in force.
        self._show_spec(self.spec)
        self.push_screen(ConfirmScreen(question), answered)

    def _patch(self, changes: Mapping[str, Any]) -> None:
        try:
            self.spec = apply_patch(self.spec, changes)
        except SpecError:
            # Not the TUI's to refuse: the engine's gate judges it as it does every door's,
            # and its refusal comes back in its words (EngineRejected). Sent on its own, so
            # that it takes no other change down with it; the controls show what is in force.
            self.link.patch(dict(changes), alone=True)
            self._show_spec(self.spec)
            return
        self.link.patch(dict(changes))
        # Controls that follow from the change (an outage switched on sets its period and
        # length) show it now: the engine's echo of our own change may be skipped as stale
        # when it overtakes the reply to the request.
        self._show_spec(self.spec)

    def _replace(self, spec: Spec, note: str) -> None:
        self.link.set_spec(spec)
        self._show_spec(spec)
        self.notify(note, timeout=3)

    def on_direction_panel_changed(self, event: DirectionPanel.Changed) -> None:
        self._edit(event.direction, event.field, event.value, event.step)

    def action_presets(self) -> None:
        def chosen(preset: Preset | None) -> None:
            if preset is not None and self._attached_or_say():
                after = preset.apply(self.spec)
                self._remember(f"preset {preset.name}", after)
                self._replace(after, f"{preset.name}: {preset.summary} · u to undo")

        self.push_screen(PresetsScreen(self.spec), chosen)

    def action_unblock(self) -> None:
        """`b` while blocked (its own binding, so that the footer says Unblock)."""
        self.action_block()

    def action_block(self) -> None:
        """`b` is itself the request to stop the link: not asked again, undone with `u`."""
        if not self._attached_or_say():
            return
        links = {d: self.spec.link(d) for d in DIRECTIONS}
        if all(link.rate > 0 for link in links.values()):
            blocking = {f"{d}.rate": 0 for d in DIRECTIONS}
            self._remember("block", apply_patch(self.spec, blocking))
            self.unblocked_rates = {d: link.rate for d, link in links.items()}
            self._patch(blocking)
            self.notify("Link blocked both ways; b unblocks, u undoes", timeout=3)
        else:
            changes = {
                f"{d}.rate": self.unblocked_rates.get(d, UNLIMITED_RATE)
                for d, link in links.items()
                if link.rate == 0
            }
            self._remember("unblock", apply_patch(self.spec, changes))
            self._patch(changes)
            self.notify("Link unblocked; u undoes", timeout=3)
        self._show_spec(self.spec)

    def action_flush(self) -> None:
        """The one change `u` cannot take back: the packets dropped are gone (the engine's
        answer says how many)."""
        if self._attached_or_say():
            self.link.flush()

    def action_reset(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes and self._attached_or_say():
                self._remember("reset", PASS_THROUGH)
                self._replace(PASS_THROUGH, "Reset to pass-through: u to undo")

        self.push_screen(ConfirmScreen("Reset both directions to pass-through?"), answered)

    def action_undo(self) -> None:
        if not self.session.history.can_undo:
            self.notify("Nothing to undo", timeout=2)
            return
        if not self._attached_or_say():
            return
        change = self.session.history.undo(self.spec)
        assert change is not None
        if change.what == "replay" and self.runner is not None:
            self.runner.stop()
        self._take_back(change, forward=False)
        self.refresh_bindings()

    def action_redo(self) -> None:
        if not self.session.history.can_redo:
            self.notify("Nothing to redo", timeout=2)
            return
        if not self._attached_or_say():
            return
        change = self.session.history.redo()
        assert change is not None
        self._take_back(change, forward=True)
        self.refresh_bindings()

    def _take_back(self, change: Change, forward: bool) -> None:
        """Undo (or redo) `change`: set back (or again) only the fields it changed, and of
        those only the ones still as it left them. One another client changed since is left
        as that client set it, and the toast names it; if that was every field, nothing is
        done and the step is dropped (it cannot be taken back any more)."""
        values, moved = take_back(change.fields, self.spec, forward)
        verb, other_key = ("Redone", "u undoes") if forward else ("Undone", "U redoes")
        if moved:
            names = sorted({field_name(path) for path in moved})
            sources = sorted(
                {self.session.changed_by.get(path, "another client") for path in moved}
            )
            was = "was" if len(names) == 1 else "were"
            why = f"{' and '.join(names)} {was} changed by {' and '.join(sources)} since"
            if not values:
                self.session.history.drop(change)
                self.notify(f"Not {verb.lower()}: {why}", severity="warning", timeout=6)
                return
            note = f"{verb}: {change.redone() if forward else change.undone()}, but {why}"
        else:
            note = f"{verb}: {change.redone() if forward else change.undone()} · {other_key}"
        if "flows" in values:  # no patch path names the flows: the spec is sent whole
            self._replace(with_values(self.spec, values), note)
            return
        self._patch(values)
        self.notify(note, timeout=6 if moved else 3)
