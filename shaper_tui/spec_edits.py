"""The user's changes to the spec: a control moved, a preset, block and unblock, reset, undo and
flush. Each is sent through the engine link, and the controls show it at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.model.presets import Preset
from engine.model.spec import DIRECTIONS, PASS_THROUGH, UNLIMITED_RATE, Direction, Spec, SpecError
from engine.model.spec_patch import patch_spec as apply_patch
from shaper_tui.app_state import ShaperState
from shaper_tui.link_edits import Field, changes_for
from shaper_tui.screens.confirm import ConfirmScreen
from shaper_tui.screens.presets import PresetsScreen
from shaper_tui.widgets.direction_panel import DirectionPanel


class SpecEdits(ShaperState):
    """The actions that change the spec."""

    def _edit(self, direction: Direction, field: Field, value: float | str) -> None:
        changes = changes_for(direction, field, value, self.spec.link(direction))
        self._patch(changes)

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
        self._edit(event.direction, event.field, event.value)

    def action_presets(self) -> None:
        def chosen(preset: Preset | None) -> None:
            if preset is not None:
                self._remember(f"preset {preset.name}")
                self._replace(
                    preset.apply(self.spec), f"{preset.name}: {preset.summary} · u to undo"
                )

        self.push_screen(PresetsScreen(self.spec), chosen)

    def action_block(self) -> None:
        links = {d: self.spec.link(d) for d in DIRECTIONS}
        if all(link.rate > 0 for link in links.values()):
            self._remember("block")
            self.unblocked_rates = {d: link.rate for d, link in links.items()}
            self._patch({f"{d}.rate": 0 for d in DIRECTIONS})
            self.notify("Link blocked both ways; b unblocks, u undoes", timeout=3)
        else:
            self._remember("unblock")
            changes = {
                f"{d}.rate": self.unblocked_rates.get(d, UNLIMITED_RATE)
                for d, link in links.items()
                if link.rate == 0
            }
            self._patch(changes)
            self.notify("Link unblocked", timeout=3)
        self._show_spec(self.spec)

    def action_flush(self) -> None:
        self.link.flush()

    def action_reset(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._remember("reset")
                self._replace(PASS_THROUGH, "Reset to pass-through: u to undo")

        self.push_screen(ConfirmScreen("Reset both directions to pass-through?"), answered)

    def action_undo(self) -> None:
        if not self.undo_steps:
            self.notify("Nothing to undo", timeout=2)
            return
        what, spec = self.undo_steps.pop()
        if what == "replay" and self.runner is not None:
            self.runner.stop()
        self._replace(spec, f"Undone: {what}")
        self.refresh_bindings()
