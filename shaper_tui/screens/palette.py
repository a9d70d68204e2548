"""The command palette with a footer of its own: Textual's drew none, so the main screen's
keys (`←→ step`, `b Block`, ...) stayed under it, keys that do nothing while it is open
(new-user report 22, finding 10). Its footer says how to leave; its field, how to run."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import CommandPalette

from shaper_tui.widgets.key_footer import KeyFooter

#: Enter belongs to the search field (it runs the command), so the footer cannot name it.
PLACEHOLDER = "A command by name: ↑↓ choose, ⏎ runs, Esc closes"


class KeyedPalette(CommandPalette):
    """Textual's palette, its keys in a footer of its own."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "escape", "Close", tooltip="Close the command palette"),
    ]

    def __init__(self) -> None:
        super().__init__(placeholder=PLACEHOLDER, id="--command-palette")

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield KeyFooter()
