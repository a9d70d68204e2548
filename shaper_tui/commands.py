"""The command palette and the help: every binding by name, and a "Set ..." entry for each
control, which focuses it and asks for its exact value."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import cast

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from engine.model.spec import DIRECTIONS
from shaper_tui.app_state import ShaperState
from shaper_tui.bindings import MOVES
from shaper_tui.key_help import HelpSection, help_lines, key_help, plain
from shaper_tui.screens.confirm import ConfirmScreen
from shaper_tui.screens.help import HelpScreen
from shaper_tui.screens.history import HistoryScreen
from shaper_tui.screens.packets import PacketsScreen
from shaper_tui.screens.palette import KeyedPalette
from shaper_tui.screens.path_prompt import PathPrompt
from shaper_tui.screens.presets import PresetsScreen
from shaper_tui.screens.value_prompt import ValuePrompt
from shaper_tui.widgets.choice_control import ChoiceControl
from shaper_tui.widgets.direction_panel import ORDER, TITLES
from shaper_tui.widgets.value_slider import ValueSlider


class PaletteCommands(ShaperState):
    """The palette's entries and the help's list of keys."""

    #: Made by `ShaperApp`: shows the advanced controls (an entry may name one).
    action_advanced: Callable[[], None]

    def action_command_palette(self) -> None:
        """Textual's palette, with a footer of its own (see screens/palette.py)."""
        if self.use_command_palette and not KeyedPalette.is_open(cast("App[object]", self)):
            self.push_screen(KeyedPalette())

    def help_sections(self) -> list[HelpSection]:
        """Every screen's keys, each key once a screen: the main screen's (moving, on a
        control, the rest), then the other screens' and the prompts'."""
        palette = Binding(self.COMMAND_PALETTE_BINDING, "command_palette", "Commands",
                          tooltip="The command palette: every action by name")  # fmt: skip
        moving = [b for b in self.BINDINGS if isinstance(b, Binding) and b.id in MOVES]
        acting = [b for b in self.BINDINGS if not isinstance(b, Binding) or b.id not in MOVES]
        controls = [*ValueSlider.BINDINGS, *ChoiceControl.BINDINGS]
        show = self.get_key_display
        return [
            HelpSection("Moving between controls", help_lines(moving, show), tags="main"),
            HelpSection("On a control", help_lines(controls, show), tags="main slider choice",
                        note="A digit opens the exact-value prompt with that digit typed."),
            HelpSection("Main screen", help_lines([*acting, palette], show), tags="main"),
            HelpSection("Packets view (v)", help_lines(PacketsScreen.BINDINGS, show)),
            HelpSection("History (g)", help_lines(HistoryScreen.BINDINGS, show)),
            HelpSection("Presets (p)", help_lines(PresetsScreen.BINDINGS, show),
                        note="Typing filters the list; Enter applies the one highlighted."),
            HelpSection("Exact-value prompt (⏎ or a digit on a slider)",
                        help_lines(ValuePrompt.BINDINGS, show), tags="prompt",
                        note="Enter applies the value typed, with its unit (20mbit, 150ms, "
                        "1.5%; a bare number is in the unit the control shows); a bad one "
                        "is explained under it and nothing changes."),
            HelpSection("File prompt (t)", help_lines(PathPrompt.BINDINGS, show), tags="prompt",
                        note="→ takes the name suggested; Enter opens the file."),
            HelpSection("Questions (before a reset, or a change that stops the link)",
                        help_lines(ConfirmScreen.BINDINGS, show), tags="prompt confirm"),
            HelpSection("This help (?)", help_lines(HelpScreen.BINDINGS, show)),
        ]  # fmt: skip

    async def action_edit(self, control_id: str) -> None:
        """Focus a control and ask for its exact value (from the command palette)."""
        widget = self.screen_stack[0].query_one(f"#{control_id}")
        hidden = widget.parent is not None and widget.parent.has_class("advanced")
        if hidden and not self.panels["ingress"].has_class("-advanced"):
            self.action_advanced()
        widget.focus()
        if isinstance(widget, ValueSlider):
            await widget.action_prompt()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for entry in key_help(self.BINDINGS, self.get_key_display):
            if (
                not entry.action.startswith("app.")
                and entry.action != "quit"
                and self.check_action(entry.action, ()) is not False
            ):
                yield SystemCommand(entry.description, plain(f"{entry.tooltip} ({entry.keys})"),
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
