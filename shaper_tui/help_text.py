"""The help's Markdown (the little it uses: headings, items, `**bold**`, `` `code` ``) as one
Rich Text, for a Static: Textual's Markdown widget mounts a widget per block, which took a
second to open the help and up to 0.7 s a typed letter of its search (new-user report 22)."""

from __future__ import annotations

import re
from functools import lru_cache

from rich.text import Text

INLINE = re.compile(r"(\*\*.+?\*\*|`[^`]+`)")
HEADINGS = {"# ": "bold reverse", "## ": "bold underline", "### ": "bold"}


def inline(text: str, style: str = "") -> Text:
    """One block's words, with its bold and code spans styled."""
    out = Text(style=style)
    for part in INLINE.split(text):
        if part.startswith("**") and part.endswith("**") and len(part) > 4:
            out.append(part[2:-2], style="bold")
        elif part.startswith("`") and part.endswith("`") and len(part) > 2:
            out.append(part[1:-1], style="italic")
        else:
            out.append(part)
    return out


def blocks(markdown: str) -> list[str]:
    """Headings, items and paragraphs, each on one line (their source lines joined)."""
    out: list[str] = []
    for chunk in markdown.split("\n\n"):
        current: list[str] = []
        for line in chunk.splitlines():
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith(("- ", "#")) and current:
                out.append(" ".join(current))
                current = []
            current.append(stripped)
        if current:
            out.append(" ".join(current))
    return out


@lru_cache(maxsize=64)
def help_text(markdown: str) -> Text:
    """The whole document, a blank line before each heading and paragraph."""
    lines: list[Text] = []
    for block in blocks(markdown):
        heading = next((h for h in HEADINGS if block.startswith(h)), None)
        if heading is not None:
            if lines:
                lines.append(Text())
            lines.append(inline(block[len(heading) :], HEADINGS[heading]))
        elif block.startswith("- "):
            lines.append(Text("• ").append_text(inline(block[2:])))
        else:
            if lines:
                lines.append(Text())
            lines.append(inline(block))
    return Text("\n").join(lines)
