"""Fixes to the Textual the TUI runs on: two applied once when the app is built (a leak, and
a full repaint at each focus move: see `_focus_without_full_repaint`), and a cheaper way to set
a border subtitle.

Textual's `StylesCache.get_inner_outer` (a pure function of two colours) is an instance method
under `functools.lru_cache(1024)`: the cache's keys hold `self`, so the styles cache of every
widget ever drawn stays alive, with all the lines it rendered, until 1024 newer keys push it
out. Each open of the help (hundreds of Markdown widgets) or the history left ~2 MB of dead
widgets' lines behind (issue 35, item 17). Here the cache keys on the colours alone; a Textual
whose method is no longer cached that way is left as it is.
"""

from __future__ import annotations

from functools import lru_cache

from textual._styles_cache import StylesCache
from textual.color import Color
from textual.geometry import Region
from textual.reactive import Reactive
from textual.screen import Screen
from textual.style import Style
from textual.widget import Widget

from shaper_tui import focus_chain


@lru_cache(1024)
def _inner_outer(base_background: Color, background: Color) -> tuple[Style, Style]:
    """The inner and outer background styles, as Textual computes them."""
    return Style(background=base_background + background), Style(background=base_background)


def _get_inner_outer(
    _cache: StylesCache, base_background: Color, background: Color
) -> tuple[Style, Style]:
    return _inner_outer(base_background, background)


def apply() -> None:
    """Key Textual's background cache on colours, not on styles caches (see the module),
    let a focus move repaint what it restyles, not the whole screen, and let a marked screen
    keep its focus chain (`shaper_tui.focus_chain`)."""
    current = StylesCache.__dict__.get("get_inner_outer")
    clear = getattr(current, "cache_clear", None)
    if clear is not None:  # the method itself is lru-cached: self is a key
        clear()
        StylesCache.get_inner_outer = _get_inner_outer  # type: ignore[method-assign,assignment]
    _focus_without_full_repaint()
    focus_chain.apply()


def _focus_without_full_repaint() -> None:
    """Textual's `Screen.focused` is a reactive that repaints the whole screen when set: at
    200x60 each frame of a burst of `j`/`k` presses was a full repaint, and 120 presses kept
    the TUI busy for seconds. The screen draws nothing that depends on focus; the controls
    that gain and lose it are restyled and repaint themselves, so only the flag is turned off
    (a Textual without it is left as it is)."""
    focused = Screen.__dict__.get("focused")
    if isinstance(focused, Reactive) and getattr(focused, "_repaint", False) is True:
        focused._repaint = False


def set_border_subtitle(widget: Widget, text: str) -> None:
    """Set `widget`'s border subtitle, repainting only the bottom border row.

    Textual's `border_subtitle` repaints the whole widget: for a panel it was every line of
    the panel, recomposed with all the graphs and controls in it, at each report. The text is
    stored as Textual stores it; a Textual without that attribute gets the plain setter."""
    if not widget.is_mounted or not hasattr(widget, "_border_subtitle"):
        widget.border_subtitle = text
        return
    widget._border_subtitle = widget.render_str(text).expand_tabs(4).split()[0]
    width, height = widget.outer_size
    if height:
        offset = widget.content_offset
        widget.refresh(Region(0, height - 1, width, 1).translate(-offset))
