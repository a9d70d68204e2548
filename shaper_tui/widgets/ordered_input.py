"""A text field whose editing keys act in the order they were typed.

Textual runs a widget's key bindings (Ctrl+U, Backspace, Enter, ...) only once the key has
bubbled up to the app and back, while the printable keys typed after it go straight to the
field: in one burst (a paste, a fast typist, tmux send-keys) `Ctrl+U 75ms` became `75ms` then
deleted, and Enter then said `not a duration: ''`. Here the field runs its own bindings as
the key reaches it, so every key acts in turn.
"""

from __future__ import annotations

from textual import events
from textual.binding import Binding, BindingType
from textual.widgets import Input


def _keys_of(bindings: list[BindingType]) -> frozenset[str]:
    keys: set[str] = set()
    for binding in bindings:
        key = binding.key if isinstance(binding, Binding) else binding[0]
        keys.update(part.strip() for part in key.split(","))
    return frozenset(keys)


#: The field's own editing keys. Those it inherits from ScrollView (↑ ↓ PageUp ...) scroll
#: nothing in one line and are for the screen: run here, ↓ was swallowed in the presets list.
EDITING_KEYS = _keys_of(Input.BINDINGS)


class OrderedInput(Input):
    """`Input`, with its own key bindings run in key order."""

    async def _on_key(self, event: events.Key) -> None:
        if event.key not in EDITING_KEYS:
            await super()._on_key(event)
            return
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if binding.priority:
                continue  # the app ran priority bindings before forwarding the key
            event.stop()
            event.prevent_default()
            self._restart_blink()
            await self.run_action(binding.action)
            return
        await super()._on_key(event)
