"""Pick a named link condition; each shows its figures and where they were published."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from engine.model.presets import PRESETS, Preset


class PresetsScreen(ModalScreen[Preset | None]):
    DEFAULT_CSS = """
    PresetsScreen {
        align: center middle;
    }
    PresetsScreen > Vertical {
        width: 90;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $accent;
        background: $surface;
    }
    PresetsScreen OptionList {
        height: auto;
        max-height: 20;
        border: none;
    }
    PresetsScreen .hint {
        color: $text-muted;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,p", "cancel", "Close", id="presets.close", tooltip="Keep the link as is"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Presets[/b]: sets rate and latency both ways (RTT split in half)",
                        classes="hint")  # fmt: skip
            options = []
            for index, preset in enumerate(PRESETS):
                text = Text()
                text.append(f"{preset.name:<18}", style="bold")
                text.append(f"{preset.summary:<42}")
                text.append(preset.source, style="dim")
                options.append(Option(text, id=str(index)))
            yield OptionList(*options)
            yield Label("Enter applies · Esc closes · flow rules are kept", classes="hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        assert event.option.id is not None
        self.dismiss(PRESETS[int(event.option.id)])

    def action_cancel(self) -> None:
        self.dismiss(None)
