"""A prompt for an exact value in units. A bad value is explained in place; the prompt stays
open until the value is good or the user gives up with Escape."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from engine.model.units import UnitError
from shaper_tui.scales import Scale
from shaper_tui.screens.held_toasts import HoldsToasts
from shaper_tui.widgets.key_footer import KeyFooter
from shaper_tui.widgets.ordered_input import OrderedInput
from shaper_tui.widgets.plain import PlainLabel, bold


class ValuePrompt(HoldsToasts, ModalScreen[float | None]):
    DEFAULT_CSS = """
    ValuePrompt {
        align: center middle;
    }
    ValuePrompt > Vertical {
        width: 60;
        max-width: 100%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    ValuePrompt #error {
        color: $error;
        width: 100%;  /* a long reason wraps rather than being cut at the border */
    }
    ValuePrompt #hint {
        color: $text-muted;
        width: 100%;  /* wraps at the border (a rate's hint is 78 columns), never cut */
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # Before the field's own (hidden) Enter, so that the footer says what Enter does; it
        # submits the field all the same.
        Binding(
            "enter",
            "apply",
            "Apply",
            id="prompt.apply",
            priority=True,
            tooltip="Apply the value typed",
        ),
        Binding("escape", "cancel", "Cancel", id="prompt.cancel", tooltip="Keep the old value"),
    ]

    def __init__(
        self, label: str, scale: Scale, current: str, initial: str = "", shown: float = 0.0
    ) -> None:
        super().__init__()
        self.label = label
        self.scale = scale
        self.current = current
        self.initial = initial
        #: The value the control shows: a bare number is read in its unit.
        self.shown = shown

    def compose(self) -> ComposeResult:
        with Vertical():
            yield PlainLabel(Text.assemble(bold(self.label), f" (now {self.current})"))
            yield OrderedInput(value=self.initial, placeholder=self.current, id="value")
            yield PlainLabel(self.scale.hint(self.shown), id="hint")
            yield PlainLabel("", id="error")
        yield KeyFooter()  # its own keys, over the main screen's

    def on_mount(self) -> None:
        field = self.query_one(Input)
        self.set_focus(field)  # at once, not a turn later: the keys after Enter are its
        field.cursor_position = len(self.initial)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            value = self.scale.read(event.value, self.shown)
        except (UnitError, ValueError) as exc:
            self.query_one("#error", Label).update(f"{self.label}: {exc}")
            return
        self.dismiss(value)

    async def action_apply(self) -> None:
        await self.query_one(Input).action_submit()

    def action_cancel(self) -> None:
        self.dismiss(None)
