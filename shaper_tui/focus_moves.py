"""A run of held focus moves taken as one net move (issue 35: back to steady within 1 s after a
burst of 120 keys).

Let in one by one, each `j`/`k`/`Tab`/`Shift+Tab`/`↓`/`↑` of a burst cost ~36 message hops
(the key bubbling from the control up to the app, the marker behind it, the blur and focus
bubbling through both panels) and ~4.5 ms of CPU: 120 moves held the TUI at a full core for
seconds on a loaded machine. A move changes nothing but the focus, so a run of them is
resolved here over the screen's focus chain (kept between DOM changes, `focus_chain.py`), and
the focus set once, where the last of them leaves it.

Each key still acts on what has the focus when its turn comes: the run goes on only while
the key would reach a focus move from the control it would find focused (no priority binding
for it, the control consumes no key and binds none of the run's, the first binding up its
ancestry is the app's focus move, live), and stops at the first key that would do anything
else, which is let in the usual way onto the focus the run left.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from textual import events
from textual.app import App
from textual.widget import Widget

#: The actions a move key runs, and which way they move along the focus chain.
MOVES = {"app.focus_next": 1, "app.focus_previous": -1}


def step_of(app: App[Any], widget: Widget, key: events.Event) -> int | None:
    """+1 or -1 if `key`, typed while `widget` is focused, would only move the focus (the
    first binding for it up the widget's ancestry is a focus move, no priority binding
    takes it first); None if it would do anything else, or might."""
    if not isinstance(key, events.Key) or widget.loading:
        return None
    if widget.check_consume_key(key.key, key.character):
        return None
    nodes = list(widget.ancestors_with_self)
    if any(binding.priority for node in nodes
           for binding in node._bindings.key_to_bindings.get(key.key, ())):  # fmt: skip
        return None
    for node in nodes:
        for binding in node._bindings.key_to_bindings.get(key.key, ()):
            step = MOVES.get(binding.action)
            if step is None or app.check_action(binding.action.removeprefix("app."), ()) is False:
                return None
            return step
    return None


def net_move(
    app: App[Any], key: events.Event, held: deque[events.Key | events.Paste],
    controls: tuple[type[Widget], ...],
) -> tuple[Widget, int] | None:  # fmt: skip
    """Where `key` and the move keys right behind it in `held` (taken from it) leave the focus
    on the app's first screen, and how many keys that took; None (nothing taken) when `key`
    is not a plain move from one of `controls` there."""
    screen = app.screen
    focused = screen.focused
    if screen is not app.screen_stack[0] or app._keymap or not isinstance(focused, controls):
        return None
    if screen.maximized is not None:
        return None
    chain = screen.focus_chain
    if focused not in chain:
        return None
    index = chain.index(focused)
    step = step_of(app, focused, key)
    keys = 0
    while step is not None:
        index = (index + step) % len(chain)
        keys += 1
        if not held or not isinstance(chain[index], controls):
            break
        step = step_of(app, chain[index], held[0])
        if step is not None:
            held.popleft()
    return (chain[index], keys) if keys else None
