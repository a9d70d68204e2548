"""The packets view's fate filter as a list to pick from (issue 35, item 16: `s` stepped
through ten filters one at a time); each also has a digit of its own in the view."""

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


class FatePicker(HoldsToasts, ModalScreen[str | None]):
    DEFAULT_CSS = """
    FatePicker {
        align: center middle;
    }
    FatePicker > OptionList {
        width: 40;
        height: auto;
        max-height: 100%;
        border: thick $accent;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", tooltip="Keep the filter as it is"),
        *[
            Binding(str(d), f"pick({d})", "Pick", show=False, id=f"fates.pick{d}",
                    tooltip="The fate of that number in the list")
            for d in range(10)
        ],
    ]  # fmt: skip

    def __init__(self, fates: Sequence[str], current: str) -> None:
        super().__init__()
        self.fates = list(fates)
        self.current = current

    def compose(self) -> ComposeResult:
        yield PickList(
            *(
                Option(f"{number if number < 10 else ' '}  {fate}", id=fate)
                for number, fate in enumerate(self.fates)
            )
        )
        yield KeyFooter()  # its own keys, over the packets view's

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.border_title = "Show which packets"
        options.highlighted = self.fates.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_pick(self, number: int) -> None:
        """A digit picks the fate it numbers, as the list shows it (as in the view itself)."""
        if number < min(10, len(self.fates)):
            self.dismiss(self.fates[number])

    def action_cancel(self) -> None:
        self.dismiss(None)
