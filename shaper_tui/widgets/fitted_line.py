"""One row of text that never wraps: the first of its wordings (longest first) that fits the
width, else the last cut with `…`. A line that wrapped took a second row the panel's `_fit`
did not count (at 80x24 a Q-limit in Gbit/s pushed three graphs off the Upload panel)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget


class FittedLine(Widget):
    DEFAULT_CSS = """
    FittedLine {
        width: 1fr;
        height: 1;
    }
    """

    def __init__(self, wordings: Sequence[str], *, id: str | None = None,
                 classes: str | None = None) -> None:  # fmt: skip
        super().__init__(id=id, classes=classes)
        self.wordings: tuple[str, ...] = tuple(wordings) or ("",)

    def update(self, wordings: str | Sequence[str]) -> None:
        """New words (one wording, or several longest first)."""
        wordings = (wordings,) if isinstance(wordings, str) else tuple(wordings)
        if wordings != self.wordings:
            self.wordings = wordings or ("",)
            self.refresh()

    def render(self) -> Text:
        room = self.content_size.width
        if room <= 0:
            return Text(self.wordings[0], no_wrap=True)
        for wording in self.wordings:
            if len(wording) <= room:
                return Text(wording, no_wrap=True)
        return Text(self.wordings[-1][: room - 1] + "…", no_wrap=True)
