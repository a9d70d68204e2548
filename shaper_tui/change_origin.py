"""Who changed the link, in words, for a change this TUI did not make (issue 35, item 16):
from the engine's `SpecChanged`, its `origin` (the door the supervisor saw it come through)
and its `source` (what the client called itself)."""

from __future__ import annotations

from collections.abc import Iterable

from shaper_tui.session import SHORT_NAMES

#: Fields named at most in a toast; more are counted.
MAX_NAMED = 3

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


def what_changed(paths: Iterable[str]) -> str:
    """The fields a change moved, in words (`Download latency, Upload loss`), so a toast says
    what changed as well as who changed it; a flow rule's change is `flow rules`."""
    names: list[str] = []
    for path in sorted(paths):
        parts = path.split(".")
        if parts[0] == "default_link" and len(parts) >= 3 and parts[1] in SHORT_NAMES:
            name = f"{SHORT_NAMES[parts[1]]} {' '.join(parts[2:]).replace('_', ' ')}"
        else:
            name = "flow rules" if parts[0] == "flows" else path
        if name not in names:
            names.append(name)
    if len(names) > MAX_NAMED:
        return f"{', '.join(names[:MAX_NAMED])} and {len(names) - MAX_NAMED} more"
    return ", ".join(names)
