"""Ask for a file path (a timeline to replay): offered a default, completing over candidates,
and checked before it closes, so a bad path is said in place and can be corrected."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label

from shaper_tui.screens.held_toasts import HoldsToasts
from shaper_tui.widgets.key_footer import KeyFooter
from shaper_tui.widgets.ordered_input import OrderedInput
from shaper_tui.widgets.plain import PlainLabel, bold


class PathPrompt(HoldsToasts, ModalScreen[str | None]):
    DEFAULT_CSS = """
    PathPrompt {
        align: center middle;
    }
    PathPrompt > Vertical {
        width: 70;
        max-width: 100%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    PathPrompt #error {
        color: $error;
        width: 100%;  /* a long reason wraps rather than being cut at the border */
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="path.cancel", tooltip="Do nothing"),
    ]

    def __init__(
        self,
        title: str,
        hint: str,
        value: str = "",
        candidates: Sequence[str] = (),
        check: Callable[[str], str | None] | None = None,
        empty: str = "No path given: type one (→ completes), or Esc to cancel",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.hint = hint
        self.value = value
        self.candidates = list(candidates)
        #: Why a path will not do (one line), or None: then the prompt closes with it.
        self.check = check
        #: Said on Enter with nothing typed: a silent prompt took the next keys as a path.
        self.empty = empty

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainLabel(Text.assemble(bold(self.title_text), "  (→ completes, Esc cancels)"))
            suggester = SuggestFromList(self.candidates) if self.candidates else None
            yield OrderedInput(self.value, placeholder=self.hint, id="path", suggester=suggester)
            yield PlainLabel("", id="error")
        yield KeyFooter()  # its own keys, over the main screen's

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        if not path:
            self.show_error(self.empty)
            return
        problem = self.check(path) if self.check is not None else None
        if problem is not None:
            self.show_error(problem)
            return
        self.dismiss(path)

    def show_error(self, message: str) -> None:
        self.query_one("#error", Label).update(message)

    def action_cancel(self) -> None:
        self.dismiss(None)
