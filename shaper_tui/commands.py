"""The command palette and the help: every binding by name, and a "Set ..." entry for each
control, which focuses it and asks for its exact value."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from engine.model.spec import DIRECTIONS
from shaper_tui.app_state import ShaperState
from shaper_tui.bindings import MOVES
from shaper_tui.key_help import KeyHelp, key_help
from shaper_tui.widgets.choice_control import ChoiceControl
from shaper_tui.widgets.direction_panel import ORDER, TITLES
from shaper_tui.widgets.value_slider import ValueSlider


class PaletteCommands(ShaperState):
    """The palette's entries and the help's list of keys."""

    #: Made by `ShaperApp`: shows the advanced controls (an entry may name one).
    action_advanced: Callable[[], None]

    def key_help(self) -> list[KeyHelp]:
        """The keys of the controls, then the app's, then the command palette's."""
        palette = Binding(self.COMMAND_PALETTE_BINDING, "command_palette", "Commands",
                          tooltip="The command palette: every action by name")  # fmt: skip
        moving = [b for b in self.BINDINGS if isinstance(b, Binding) and b.id in MOVES]
        acting = [b for b in self.BINDINGS if not isinstance(b, Binding) or b.id not in MOVES]
        controls = [*ValueSlider.BINDINGS, *ChoiceControl.BINDINGS]
        return key_help([*moving, *controls, *acting, palette], self.get_key_display)

    def action_edit(self, control_id: str) -> None:
        """Focus a control and ask for its exact value (from the command palette)."""
        widget = self.screen_stack[0].query_one(f"#{control_id}")
        hidden = widget.parent is not None and widget.parent.has_class("advanced")
        if hidden and not self.panels["ingress"].has_class("-advanced"):
            self.action_advanced()
        widget.focus()
        if isinstance(widget, ValueSlider):
            widget.action_prompt()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for entry in key_help(self.BINDINGS, self.get_key_display):
            if (
                not entry.action.startswith("app.")
                and entry.action != "quit"
                and self.check_action(entry.action, ()) is not False
            ):
                yield SystemCommand(entry.description, f"{entry.tooltip} ({entry.keys})",
                                    partial(self.run_action, entry.action))  # fmt: skip
        for direction in DIRECTIONS:
            for field in ORDER:
                name = f"{TITLES[direction].split()[0]} {field.replace('_', ' ')}"
                yield SystemCommand(
                    f"Set {name}",
                    f"Focus {name} and type a value",
                    partial(self.action_edit, f"{direction}-{field}"),
                    discover=False,
                )
