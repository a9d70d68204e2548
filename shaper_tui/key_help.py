"""The keys, told once: every action's key, name and sentence live in the widgets' and screens'
`BINDINGS` (the footer shows them from there); the help screen and the command palette are
made from the same bindings, so the three never disagree.

The help lists each key once per screen: two bindings on one key (`r` records, and stops a
recording) make one line, and keys that do the same make one line (`→ / l`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from textual.binding import Binding, BindingType

KeyDisplay = Callable[[Binding], str]


@dataclass(frozen=True)
class KeyHelp:
    """One action as a person reads it: its keys, its name, what it does."""

    keys: str
    description: str
    tooltip: str
    action: str


@dataclass(frozen=True)
class HelpLine:
    """One or more keys that do the same, and what they do."""

    keys: str
    text: str


@dataclass(frozen=True)
class HelpSection:
    """The keys of one screen (or part of one), and a note on what has no binding."""

    title: str
    lines: list[HelpLine]
    note: str = ""
    #: Words the search also matches (the screen's key, say).
    tags: str = field(default="")


def plain(text: str) -> str:
    """A tooltip without its Markdown (backticks): for the palette and the footer's tips."""
    return text.replace("`", "")


def key_help(bindings: Iterable[BindingType], display: KeyDisplay) -> list[KeyHelp]:
    """The bindings that say what they do (a tooltip), in order, one per action, with the
    keys of each compound binding ("right,l") joined: what the command palette lists."""
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


def help_lines(bindings: Iterable[BindingType], display: KeyDisplay) -> list[HelpLine]:
    """Each key once: the sentences of every binding on it (in order, each once); keys with
    the same sentences share a line. Bindings without a tooltip (the digits that also open
    the exact-value prompt, say) are told by another's sentence."""
    said: dict[str, list[str]] = {}
    for binding in bindings:
        if not isinstance(binding, Binding) or not binding.tooltip:
            continue
        for single in Binding.make_bindings([binding]):
            sentences = said.setdefault(single.key, [])
            if binding.tooltip not in sentences:
                sentences.append(binding.tooltip)
    keys_of: dict[tuple[str, ...], list[str]] = {}
    for key, sentences in said.items():
        keys_of.setdefault(tuple(sentences), []).append(key)
    return [
        HelpLine(" / ".join(display(Binding(key, "")) for key in keys), "; ".join(sentences))
        for sentences, keys in keys_of.items()
    ]


def matches(text: str, words: list[str]) -> bool:
    lowered = text.lower()
    return all(word in lowered for word in words)


def help_markdown(sections: Iterable[HelpSection], search: str = "") -> str:
    """The help's list of keys, by screen; with `search`, only the lines (and notes) that
    hold every word of it (or whose section's title does)."""
    words = search.lower().split()
    out: list[str] = []
    for section in sections:
        whole = matches(f"{section.title} {section.tags}", words)
        lines = [
            f"- **{line.keys}**: {line.text}"
            for line in section.lines
            if whole or matches(f"{line.keys} {line.text}", words)
        ]
        note = section.note if section.note and (whole or matches(section.note, words)) else ""
        if lines or note:
            out.append(f"### {section.title}\n")
            out.extend(lines)
            if note:
                out.append(f"\n{note}")
            out.append("")
    return "\n".join(out)
