"""Text that came from another process (an engine, an HTTP API), made safe to print: a
hostile or broken peer must not reach the terminal with escapes or flood it."""

from __future__ import annotations

import re

#: How much of a peer's text is shown.
PRINT_LIMIT = 200

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str, limit: int = PRINT_LIMIT) -> str:
    """`text` with control characters (escapes, newlines, C1) replaced by `?` and cut to
    `limit` characters, ending in `…` where cut."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _CONTROL.sub("?", text)
