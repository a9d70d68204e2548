"""Labels that show their words as they are.

Text from the user, a file, the engine or the network may hold `[...]`, which Textual reads
as markup: a typed `5[/]` raised `MarkupError` and took the TUI down, and `[@click=...]`
would have planted an action. Every such door goes through these; emphasis is a style.
"""

from __future__ import annotations

from rich.text import Text
from textual.visual import VisualType
from textual.widgets import Label, Static


class PlainLabel(Label):
    """`Label` that never parses markup, at creation or at `update`."""

    def __init__(
        self, content: VisualType = "", *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(content, markup=False, id=id, classes=classes)


class PlainStatic(Static):
    """`Static` that never parses markup, at creation or at `update`."""

    def __init__(
        self, content: VisualType = "", *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(content, markup=False, id=id, classes=classes)


def bold(text: str) -> Text:
    """`text` in bold, its brackets shown as typed."""
    return Text(text, style="bold")
