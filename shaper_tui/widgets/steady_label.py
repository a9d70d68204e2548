"""A label for figures that are shown again at every report, most often unchanged.

Textual's `Label.update` repaints whatever the text, and by default lays the whole screen out
again (the label's height might change). At two reports a second per direction that was a
layout pass of every widget for an `RTT` line that read the same as before.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.widgets import Label


class SteadyLabel(Label):
    """`Label` with `show(text)`: nothing when the text is the same, a repaint without a
    layout when the old and the new text each fit on the one line the label has."""

    def __init__(
        self, text: str = "", *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(text, id=id, classes=classes)
        self._text: str | None = None  # unknown until shown: the first `show` lays out

    def show(self, text: str) -> None:
        if text == self._text:
            return
        one_line = self._text is not None and self._fits(self._text) and self._fits(text)
        self._text = text
        self.update(text, layout=not one_line)

    def _fits(self, text: str) -> bool:
        width, height = self.content_size
        return width > 0 and height == 1 and "\n" not in text and cell_len(text) <= width
