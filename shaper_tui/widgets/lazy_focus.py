"""Focus restyled once a frame, not once a key.

Textual restyles a widget (its CSS and every component class, matched afresh) the moment it
gains or loses focus. A burst of 120 `j`/`k` presses moves focus 120 times before the screen
is drawn once; restyling each control on each move was most of the seconds the TUI stayed
busy after such a burst. Here the restyle waits for the next refresh and is done once
however often focus came and went meanwhile: what is drawn is the same.
"""

from __future__ import annotations

from textual.widget import Widget


class LazyFocusStyle(Widget):
    """A focusable control whose `:focus` styles are applied after the next refresh."""

    _restyle_pending = False

    def watch_has_focus(self, _has_focus: bool) -> None:
        if not self._restyle_pending:
            self._restyle_pending = True
            # The app idles between two keys of a burst: a restyle after the next refresh
            # came after every key. The app that lets keys in one by one holds it to the end.
            after_keys = getattr(self.app, "call_after_keys", None)
            (after_keys or self.call_after_refresh)(self._restyle)

    def _restyle(self) -> None:
        self._restyle_pending = False
        if not self.is_attached:
            return
        self.update_node_styles()
