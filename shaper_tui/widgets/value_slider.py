"""A one-line slider for a number with units: label, bar, value.

Keys move it along its scale's steps (fine, or a decade at a time); a digit or Enter asks for
an exact value in units, which may be past the slider's ends (the engine's gate judges it; the
bar stays pinned at its end, the figure says the value). `Changed` is posted only for the
user's own moves, never when the app sets the value to what the engine reports, so engine
updates never echo back.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive

from shaper_tui.scales import Scale
from shaper_tui.screens.value_prompt import ValuePrompt
from shaper_tui.widgets.lazy_focus import LazyFocusStyle

LABEL_WIDTH = 10
VALUE_WIDTH = 12


class ValueSlider(LazyFocusStyle, can_focus=True):
    DEFAULT_CSS = """
    ValueSlider {
        height: 1;
        width: 1fr;
    }
    ValueSlider:focus {
        background: $boost;
    }
    ValueSlider.-blocked {
        color: $error;
    }
    ValueSlider > .value-slider--label {
        text-style: bold;
    }
    ValueSlider:focus > .value-slider--label {
        text-style: bold reverse;
    }
    ValueSlider > .value-slider--filled {
        color: ansi_green;
        text-style: bold;
    }
    ValueSlider > .value-slider--empty {
        text-style: dim;
    }
    ValueSlider > .value-slider--blocked-value {
        color: ansi_red;
        text-style: bold;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "value-slider--label",
        "value-slider--filled",
        "value-slider--empty",
        "value-slider--blocked-value",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("right,l", "step(1)", "step", key_display="←→", id="slider.up",
                tooltip="One step up"),
        Binding("left,h", "step(-1)", "Less", show=False, id="slider.down",
                tooltip="One step down"),
        Binding("shift+right,L", "coarse(1)", "decade", show=False, id="slider.coarse_up",
                key_display="⇧←→",
                tooltip="A coarse step up: a decade on rates and times"),
        Binding("shift+left,H", "coarse(-1)", "Much less", show=False, id="slider.coarse_down",
                key_display="Shift+← / H", tooltip="A coarse step down"),
        Binding("home", "extreme(-1)", "Lowest", show=False, id="slider.lowest", key_display="Home",
                tooltip="The lowest value (0; off for a connection fault; blocked for a rate: "
                "that asks first)"),
        Binding("end", "extreme(1)", "Highest", show=False, id="slider.highest", key_display="End",
                tooltip="The highest value (unlimited for a rate); where that stops the link "
                "(100 % loss), it asks first"),
        Binding("enter", "prompt", "type", id="slider.prompt", key_display="⏎",
                tooltip="Type an exact value: 20mbit, 150ms, 1.5%; a bare number is in the "
                "unit shown"),
        *[
            Binding(str(d), f"prompt('{d}')", "Exact value", show=False, id=f"slider.digit{d}")
            for d in range(10)
        ],
    ]  # fmt: skip

    value: reactive[float] = reactive(0.0)

    class Changed(Message):
        """The user moved the slider: by a step (`step`, one of a burst that is one undo
        step) or to a typed value (an undo step of its own)."""

        def __init__(self, slider: ValueSlider, value: float, step: bool = True) -> None:
            super().__init__()
            self.slider = slider
            self.value = value
            self.step = step

        @property
        def control(self) -> ValueSlider:
            return self.slider

    def __init__(
        self,
        label: str,
        scale: Scale,
        value: float = 0.0,
        *,
        field: str = "",
        direction: str = "",
        id: str | None = None,
        title: str = "",
    ) -> None:
        super().__init__(id=id)
        self.label = label
        #: What the value prompt is headed with: the direction and the field.
        self.title = title or label
        self.scale = scale
        self.field = field
        self.direction = direction
        self.set_reactive(ValueSlider.value, value)
        self.tooltip = f"{label}: ←/→ step, shift+←/→ coarse, Enter or a digit for an exact value"

    def watch_value(self, value: float) -> None:
        self.set_class(self.field == "rate" and value <= 0, "-blocked")

    @property
    def text(self) -> str:
        return self.scale.format(self.value)

    def render(self) -> Text:
        width = self.size.width
        bar_width = max(4, width - LABEL_WIDTH - VALUE_WIDTH - 3)
        filled = round(self.scale.fraction(self.value) * bar_width)
        style = partial(self.get_component_rich_style, partial=True)
        line = Text()
        line.append(f"{self.label:<{LABEL_WIDTH}}", style=style("value-slider--label"))
        line.append(" ")
        line.append("━" * filled, style=style("value-slider--filled"))
        line.append("─" * (bar_width - filled), style=style("value-slider--empty"))
        line.append(" ")
        blocked = self.field == "rate" and self.value <= 0
        value_style = style("value-slider--blocked-value") if blocked else ""
        line.append(f"{self.text:>{VALUE_WIDTH}}", style=value_style)
        return line

    def _user_set(self, value: float, step: bool = True) -> None:
        if value != self.value:
            self.value = value
            self.post_message(self.Changed(self, value, step))

    def action_step(self, count: int) -> None:
        self._user_set(self.scale.step(self.value, count))

    def action_coarse(self, count: int) -> None:
        self._user_set(self.scale.step(self.value, count * self.scale.coarse))

    def action_extreme(self, end: int) -> None:
        self._user_set(self.scale.maximum if end > 0 else self.scale.minimum)

    async def action_prompt(self, initial: str = "") -> None:
        """The prompt, up and focused before the next key is handled (awaited: keys typed
        after Enter waited in the queue and reach its field)."""

        def done(value: float | None) -> None:
            if value is not None:
                self._user_set(value, step=False)

        prompt = ValuePrompt(self.title, self.scale, self.text, initial, shown=self.value)
        await self.app.push_screen(prompt, done)
