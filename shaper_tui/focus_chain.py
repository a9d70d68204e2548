"""The main screen's focus chain, built once per change of what it shows, not once per key.

Textual's `Screen.focus_chain` walks the whole screen (every graph, label and line of both
panels, hundreds of widgets) and sorts each container's children, on every `j`/`k`/`Tab`: at
200x60 that was ~0.9 ms of the ~1.1 ms a focus move costs, and most of what a burst of 120
moves costs (issue 35: back to steady within 1 s after such a burst).

What the chain depends on there: the DOM (a widget mounted or removed, or its `display`
switched, as `a` does to the advanced settings: Textual counts each in the screen's node list,
`_nodes._updates`, bumped up the whole ancestry), where each widget is laid out (the chain is
sorted by position: the screen's compositor maps, replaced at each reflow) and the node focus
is trapped in. The chain is kept with those and built afresh when one of them changed or the
focused widget is not in it. Only screens marked with `cache_focus_chain` keep it: the main
screen sets no `disabled`, `visibility` or `can_focus` after mount, which Textual does not
count; other screens (fields that are disabled and enabled) keep Textual's walk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.dom import DOMNode
from textual.screen import Screen
from textual.widget import Widget

#: The attribute a screen is marked with, and the one its kept chain is stored in.
MARK = "_shaper_cache_focus_chain"
_KEPT = "_shaper_focus_chain"

Build = Callable[[Screen[Any]], list[Widget]]
Key = tuple[object, ...]


def _trap_root(screen: Screen[Any]) -> DOMNode:
    """The node the focus is trapped in (Textual's rule: the nearest ancestor that traps)."""
    focused = screen.focused
    if focused is not None:
        for node in focused.ancestors_with_self:
            if node._trap_focus:
                return node
    return screen


def _key(screen: Screen[Any]) -> Key:
    """What the chain was built from: two counts, then objects compared by identity (the
    maps are big dicts)."""
    compositor = screen._compositor
    return (
        screen._nodes._updates,
        compositor._full_map_invalidated,
        _trap_root(screen),
        compositor._full_map,
        compositor._visible_map,
    )


def _same(key: Key, kept: Key) -> bool:
    return key[:2] == kept[:2] and all(a is b for a, b in zip(key[2:], kept[2:], strict=True))


def _kept_chain(build: Build) -> Build:
    def focus_chain(screen: Screen[Any]) -> list[Widget]:
        if not getattr(screen, MARK, False):
            return build(screen)
        key = _key(screen)
        kept: tuple[Key, list[Widget]] | None = getattr(screen, _KEPT, None)
        focused = screen.focused
        if kept is not None and _same(key, kept[0]) and (focused is None or focused in kept[1]):
            return list(kept[1])  # a copy: callers may filter it
        chain = build(screen)
        setattr(screen, _KEPT, (key, chain))
        return list(chain)

    return focus_chain


def keep_focus_chain(screen: Screen[Any]) -> None:
    """Let `screen` keep its focus chain between changes of its DOM (see the module)."""
    setattr(screen, MARK, True)


def apply() -> None:
    """Install the kept chain on Textual's `Screen` once (a no-op for unmarked screens)."""
    current = Screen.__dict__.get("focus_chain")
    if not isinstance(current, property) or current.fget is None:
        return
    if getattr(current.fget, "_shaper_kept", False):
        return
    getter = _kept_chain(current.fget)
    getter._shaper_kept = True  # type: ignore[attr-defined]
    Screen.focus_chain = property(getter)  # type: ignore[method-assign,assignment]
