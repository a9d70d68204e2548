"""Who changed the link, in words, for a change this TUI did not make (issue 35, item 16):
from the engine's `SpecChanged`, its `origin` (the door the supervisor saw it come through)
and its `source` (what the client called itself)."""

from __future__ import annotations

#: The same words are not toasted again within this many seconds (a replay's ramp changes
#: the link many times a second).
QUIET_SECONDS = 5.0


def who_changed(source: str, origin: str) -> str:
    """`Changed by …`: a sentence naming the door and the client."""
    if origin == "sighup":
        return "Changed by SIGHUP: the engine read its spec file again"
    if origin == "http":
        if source == "replay":
            return "Changed by a replay run over the HTTP API"
        return f"Changed over the HTTP API ({source})"
    if source == "replay":
        return "Changed by a replay run by another client"
    if source.startswith("tui:"):
        return f"Changed by another TUI ({source})"
    return f"Changed by another client ({source})"
