"""A footer that is rebuilt only when the keys it shows change.

Textual's `Footer` recomposes (unmounts and mounts a widget per key) every time the screen's
bindings are refreshed, which happens on every focus move: a burst of 120 `j`/`k` presses held
the TUI at a full core for seconds. Most moves leave the same keys in the footer; those cost
nothing here. While the keys of a burst are still going in one by one (`key_order`), it waits
for the last.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

#: How often the footer looks again whether a burst of typed keys is over (`key_order`).
BURST_WAIT = 0.05
#: What the footer draws from: each shown key, its label and whether it is live.
Shown = tuple[tuple[str, str, str, bool], ...]


class SteadyFooter(Footer):
    """`Footer`, recomposed only when what it would show differs from what it shows."""

    _shown: Shown | None = None
    _pending = False

    def _what_it_would_show(self) -> Shown:
        return tuple(
            (binding.key, binding.action, binding.description, enabled)
            for (_, binding, enabled, _) in self.screen.active_bindings.values()
            if binding.show
        )

    def bindings_changed(self, screen: Screen[object]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return
        if not self._pending:  # one rebuild for a burst of changes, after the screen settles
            self._pending = True
            self.call_after_refresh(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        if not self.is_attached:  # its screen (a prompt, say) was dismissed meanwhile
            self._pending = False
            return
        if getattr(self.app, "keys_waiting", False):  # typed keys still going in one by one
            self.set_timer(BURST_WAIT, self._rebuild_if_changed)
            return
        self._pending = False
        shown = self._what_it_would_show()
        if shown != self._shown:
            self._shown = shown
            await self.recompose()
            self._forget_unmounted_keys()

    def _forget_unmounted_keys(self) -> None:
        """Each key Textual's footer makes is bound to its `compact` (a watcher kept in the
        footer) and never unbound: the keys of every earlier build, and those made but left
        out, stayed alive with all they drew (13 an open of the history). Only the keys shown
        are kept."""
        watchers = getattr(self, "__watchers", {})  # Textual's name for a node's watchers
        for name, entries in watchers.items():
            watchers[name] = [(node, callback) for node, callback in entries if node.is_attached]
