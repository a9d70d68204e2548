"""Who a change says it comes from (`source`): free text a client gives with a change, shown to
every subscriber (`spec_changed`), written to the engine's log and to recorded timelines.

Bounded here, in the one type every door's message uses, so no door can send a megabyte line
or a terminal escape to every TUI and the log: at most `MAX_SOURCE_LENGTH` printable
characters on one line.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

#: The longest `source` accepted (a label's length: room for a user name and a tool's).
MAX_SOURCE_LENGTH = 200


def check_source(text: str) -> str:
    """`text` unchanged if it is a fit `source`; a one-line error naming `source` if not."""
    if not text:
        raise PydanticCustomError("source", "source: must not be empty")
    if len(text) > MAX_SOURCE_LENGTH:
        raise PydanticCustomError(
            "source",
            "source: at most {limit} characters (got {length})",
            {"limit": MAX_SOURCE_LENGTH, "length": len(text)},
        )
    if not text.isprintable():
        raise PydanticCustomError(
            "source", "source: printable characters on one line only (no control characters)"
        )
    return text


#: A change's `source` as every message and timeline line carries it.
ChangeSource = Annotated[str, AfterValidator(check_source)]
