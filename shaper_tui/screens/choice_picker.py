"""A choice's options as a small list to pick from (Enter on Loss mode, Jitter as, ...): a new
user took Enter for "let me choose", not for "the next option", which ←/→ still give."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from shaper_tui.screens.held_toasts import HoldsToasts
from shaper_tui.widgets.key_footer import KeyFooter
from shaper_tui.widgets.pick_list import PickList


class ChoicePicker(HoldsToasts, ModalScreen[str | None]):
    DEFAULT_CSS = """
    ChoicePicker {
        align: center middle;
    }
    ChoicePicker > OptionList {
        width: auto;
        min-width: 30;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $accent;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="choice_picker.cancel",
                tooltip="Keep the option in force"),
        Binding("enter", "pick", "Pick", key_display="⏎", id="choice_picker.pick",
                tooltip="Pick the highlighted option (↑/↓ move)"),
    ]  # fmt: skip

    def __init__(self, title: str, options: Sequence[str], current: str) -> None:
        super().__init__()
        self.title_shown = title
        self.options = list(options)
        self.current = current

    def compose(self) -> ComposeResult:
        options = PickList(*(Option(option, id=option) for option in self.options))
        options.styles.min_width = len(self.title_shown) + 6  # its title whole (max-width 100%)
        yield options
        yield KeyFooter()

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.border_title = self.title_shown
        options.border_subtitle = "↑↓ ⏎ pick · esc keep"
        options.highlighted = self.options.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_pick(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self.dismiss(self.options[options.highlighted])

    def action_cancel(self) -> None:
        self.dismiss(None)
