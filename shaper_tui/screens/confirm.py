"""Ask before an action that replaces what the user set (a reset): yes or no, by key."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen

from shaper_tui.screens.held_toasts import HoldsToasts
from shaper_tui.widgets.key_footer import KeyFooter
from shaper_tui.widgets.plain import PlainLabel, bold


class ConfirmScreen(HoldsToasts, ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen > Vertical {
        width: 60;
        max-width: 100%;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    ConfirmScreen #question {
        width: 100%;  /* wraps, never cut */
    }
    ConfirmScreen #keys {
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes", id="confirm.yes", tooltip="Go ahead"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="Leave it as it is"),
    ]  # fmt: skip

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainLabel(bold(self.question), id="question")
            yield PlainLabel("y / Enter: yes   n / Esc: no", id="keys")
        yield KeyFooter()  # its own keys, over the main screen's

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
