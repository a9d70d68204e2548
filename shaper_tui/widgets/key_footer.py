"""The footer every screen of the TUI uses: Textual's, compact, without the palette's key
(it is in the help), and never cut mid-word: when the keys do not fit the width, the last
ones are left out whole, but `? Help` and `q Quit` always stay (the help lists the rest)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets._footer import FooterKey

from shaper_tui.widgets.steady_footer import SteadyFooter

#: Kept whatever the width: how to learn the rest, and how to leave.
ALWAYS = ("help", "quit", "close", "cancel")


def key_width(key: FooterKey) -> int:
    """Cells a compact key takes: key, space, description, and the gap after it."""
    return cell_len(key.key_display) + 1 + cell_len(key.description) + 1


def fitting(keys: list[FooterKey], width: int) -> list[FooterKey]:
    """The keys that fit `width`, in order: those in ALWAYS first claim their room, then the
    others from the left while they fit."""
    kept = {id(k) for k in keys if k.action.rsplit(".", 1)[-1] in ALWAYS}
    room = width - sum(key_width(k) for k in keys if id(k) in kept)
    for key in keys:
        if id(key) in kept:
            continue
        if key_width(key) > room:
            break
        kept.add(id(key))
        room -= key_width(key)
    return [k for k in keys if id(k) in kept]


class KeyFooter(SteadyFooter):
    """Textual's footer, fitted to its width (see the module), rebuilt only when its keys or
    its width change (see `SteadyFooter`)."""

    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)
        self._width = 0

    def compose(self) -> ComposeResult:
        made: Iterable[Widget] = super().compose()
        keys = [w for w in made if isinstance(w, FooterKey)]
        width = self.size.width or self.app.size.width
        yield from fitting(keys, width)

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self._shown = None  # the same keys fit differently: made again
            self.call_after_refresh(self._rebuild_if_changed)
