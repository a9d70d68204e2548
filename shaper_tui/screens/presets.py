"""Pick a named link condition: each row shows its figures, its name says its source, the
one in force is marked, and typing filters the list."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from engine.model.presets import PRESETS, Preset
from engine.model.spec import Spec
from shaper_tui.screens.held_toasts import HoldsToasts
from shaper_tui.widgets.key_footer import KeyFooter
from shaper_tui.widgets.ordered_input import OrderedInput
from shaper_tui.widgets.plain import PlainLabel

#: The name column: the longest name and the in-force mark fit.
#: The names' column: the longest name and a space.
NAME_WIDTH = max(len(preset.name) for preset in PRESETS) + 1


class PresetsScreen(HoldsToasts, ModalScreen[Preset | None]):
    DEFAULT_CSS = """
    PresetsScreen {
        align: center middle;
    }
    PresetsScreen > Vertical {
        width: 96;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $accent;
        background: $surface;
    }
    PresetsScreen Input, PresetsScreen Input:focus {
        border: none;
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    PresetsScreen OptionList {
        height: auto;
        max-height: 16;
        border: none;
    }
    PresetsScreen .hint {
        color: $text-muted;
        padding: 0 1;
        width: 100%;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close", id="presets.close", tooltip="Keep the link as is"),
        Binding("down", "move(1)", "Next", show=False, id="presets.next", tooltip="Next preset"),
        Binding("up", "move(-1)", "Previous", show=False, id="presets.previous",
                tooltip="Previous preset"),
    ]  # fmt: skip

    def __init__(self, spec: Spec | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.shown: list[Preset] = list(PRESETS)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Presets[/b]: rate and latency both ways (the RTT split in half)",
                        classes="hint")  # fmt: skip
            yield OrderedInput(placeholder="type to filter: 3g, lte, wpt, cable…", id="filter")
            yield OptionList(*self._options(PRESETS))
            yield Label("↑↓ choose · Enter applies · Esc closes · ● in force · flow rules stay",
                        classes="hint")  # fmt: skip
            yield PlainLabel(self._source(self.shown[0] if self.shown else None), classes="hint",
                        id="source")  # fmt: skip
        yield KeyFooter()  # its own keys, over the main screen's

    def _options(self, presets: list[Preset] | tuple[Preset, ...]) -> list[Option]:
        options = []
        for preset in presets:
            current = self.spec is not None and preset.in_force(self.spec)
            text = Text()
            text.append("● " if current else "  ", style="bold green")
            text.append(f"{preset.name:<{NAME_WIDTH}}", style="bold")
            text.append(preset.summary)
            options.append(Option(text, id=preset.name))
        return options

    @staticmethod
    def _source(preset: Preset | None) -> str:
        """Where the highlighted preset's figures come from."""
        return "" if preset is None else f"from {preset.source}"

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        chosen = next((p for p in self.shown if p.name == event.option.id), None)
        self.query_one("#source", Label).update(self._source(chosen))

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        listing = self.query_one(OptionList)
        current = [i for i, p in enumerate(self.shown) if self.spec and p.in_force(self.spec)]
        listing.highlighted = current[0] if current else 0

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        words = event.value.lower().split()
        self.shown = [p for p in PRESETS if all(w in f"{p.name} {p.source}".lower() for w in words)]
        listing = self.query_one(OptionList)
        listing.clear_options()
        listing.add_options(self._options(self.shown))
        listing.highlighted = 0 if self.shown else None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        index = self.query_one(OptionList).highlighted
        if index is not None and index < len(self.shown):
            self.dismiss(self.shown[index])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(next(p for p in PRESETS if p.name == event.option.id))

    def action_move(self, step: int) -> None:
        listing = self.query_one(OptionList)
        if listing.option_count:
            current = listing.highlighted if listing.highlighted is not None else 0
            listing.highlighted = max(0, min(listing.option_count - 1, current + step))

    def action_cancel(self) -> None:
        self.dismiss(None)
