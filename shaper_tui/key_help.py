"""The keys, told once: every action's key, name and sentence live in the widgets' `BINDINGS`
(the footer shows them from there); the help screen and the command palette are made from the
same bindings, so the three never disagree."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from textual.binding import Binding, BindingType

KeyDisplay = Callable[[Binding], str]


@dataclass(frozen=True)
class KeyHelp:
    """One action as a person reads it: its keys, its name, what it does."""

    keys: str
    description: str
    tooltip: str
    action: str


def key_help(bindings: Iterable[BindingType], display: KeyDisplay) -> list[KeyHelp]:
    """The bindings that say what they do (a tooltip), in order, with the keys of each
    compound binding ("right,l") joined; bindings without a tooltip (the digits that also
    open the exact-value prompt, say) are covered by another's `key_display`."""
    found: list[KeyHelp] = []
    for binding in bindings:
        if not isinstance(binding, Binding) or not binding.tooltip:
            continue
        if binding.key_display:
            keys = binding.key_display
        else:
            keys = " / ".join(display(b) for b in Binding.make_bindings([binding]))
        found.append(KeyHelp(keys, binding.description, binding.tooltip, binding.action))
    return found


def help_markdown(entries: Iterable[KeyHelp]) -> str:
    """The help screen's list of keys."""
    return "\n".join(f"- **{entry.keys}**: {entry.tooltip}" for entry in entries)
