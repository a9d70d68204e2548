"""Pydantic's validation errors as the one line a person reads: the first few problems as
`field: reason`, wherever a spec or a request is refused (spec files, the control protocol,
the HTTP API, namespace configs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError


def field_location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not part.startswith(("function-", "constrained-")) and part not in ("int", "str"):
            text += f".{part}" if text else part
    return text or "spec"


#: An error message names at most this many problems, then says how many more there were.
MAX_PROBLEMS = 5


def describe_validation_error(exc: ValidationError) -> str:
    """One line: the first problems as `field: reason`, joined with `; `."""
    return describe_errors(exc.errors(include_url=False, include_input=False))


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """`describe_validation_error` for pydantic's error dicts (FastAPI's too): linear in the
    number of problems, and short however many there are."""
    parts: dict[str, None] = {}
    more = 0
    for error in errors:
        where = field_location(tuple(part for part in error["loc"] if part != "body"))
        if error["type"] == "extra_forbidden":
            reason = "unknown field"
        else:
            reason = error["msg"].removeprefix("Value error, ")
        item = f"{where[:80]}: {reason}"
        if item in parts:
            continue
        if len(parts) < MAX_PROBLEMS:
            parts[item] = None
        else:
            more += 1
    text = "; ".join(parts)
    return f"{text}; and {more} more" if more else text
