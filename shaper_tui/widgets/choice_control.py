"""A one-line control that picks one of a few named options (loss model, jitter shape): ←/→
step through them, Enter opens them as a list to pick from (screens/choice_picker.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive

from shaper_tui.screens.choice_picker import ChoicePicker
from shaper_tui.widgets.lazy_focus import LazyFocusStyle
from shaper_tui.widgets.value_slider import LABEL_WIDTH


class ChoiceControl(LazyFocusStyle, can_focus=True):
    DEFAULT_CSS = """
    ChoiceControl {
        height: 1;
        width: 1fr;
    }
    ChoiceControl:focus {
        background: $boost;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right,l,space", "cycle(1)", "choose", key_display="←→", id="choice.next",
                tooltip="On a choice (Loss mode, Jitter as, ...): the next option"),
        Binding("enter", "pick", "pick", key_display="⏎", id="choice.pick",
                tooltip="On a choice: its options as a list (↑/↓, Enter picks, Esc keeps it)"),
        Binding("left,h", "cycle(-1)", "Previous", show=False, id="choice.previous",
                tooltip="On a choice: the previous option"),
    ]  # fmt: skip

    value: reactive[str] = reactive("")

    class Changed(Message):
        """The user picked another option: by a step (`step`, ← or →) or from the list."""

        def __init__(self, choice: ChoiceControl, value: str, step: bool = True) -> None:
            super().__init__()
            self.choice = choice
            self.value = value
            self.step = step

        @property
        def control(self) -> ChoiceControl:
            return self.choice

    def __init__(
        self,
        label: str,
        options: Sequence[str],
        value: str | None = None,
        *,
        field: str = "",
        direction: str = "",
        id: str | None = None,
        title: str = "",
    ) -> None:
        super().__init__(id=id)
        self.label = label
        #: What its list of options is headed with: the direction and the field.
        self.title = title or label
        self.options = tuple(options)
        self.field = field
        self.direction = direction
        self.set_reactive(ChoiceControl.value, value if value in self.options else self.options[0])
        self.tooltip = f"{label}: ←/→ to change, Enter to pick from a list"

    def validate_value(self, value: str) -> str:
        return value if value in self.options else self.options[0]

    def render(self) -> Text:
        line = Text()
        line.append(
            f"{self.label:<{LABEL_WIDTH}}", style="bold reverse" if self.has_focus else "bold"
        )
        line.append(" ")
        every = sum(len(option) + 2 for option in self.options)
        if LABEL_WIDTH + 1 + every <= self.size.width or not self.size.width:
            for option in self.options:
                chosen = option == self.value
                line.append(f" {option} ", style="bold reverse green" if chosen else "dim")
            return line
        # Too narrow for every option: the chosen one, with where it sits among them.
        place = self.options.index(self.value) + 1
        line.append("◂", style="dim")
        line.append(f" {self.value} ", style="bold reverse green")
        line.append(f"▸ {place}/{len(self.options)}", style="dim")
        return line

    async def action_pick(self) -> None:
        """The options as a list, up before the next key is handled (awaited, as the
        slider's prompt: keys typed after Enter reach the list)."""

        def picked(value: str | None) -> None:
            if value is not None and value != self.value:
                self.value = value
                self.post_message(self.Changed(self, self.value, step=False))

        await self.app.push_screen(ChoicePicker(self.title, self.options, self.value), picked)

    def action_cycle(self, count: int) -> None:
        index = (self.options.index(self.value) + count) % len(self.options)
        self.value = self.options[index]
        self.post_message(self.Changed(self, self.value))
