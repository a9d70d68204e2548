"""Pydantic's validation errors as the one line a person reads: the first few problems as
`field: reason`, wherever a spec or a request is refused (spec files, the control protocol,
the HTTP API, namespace configs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from engine.model.printable import printable


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


#: An input longer than this (as JSON) is not echoed in a reason.
MAX_ECHOED = 40


#: A field name or path quoted in a refusal is cut to this many characters.
MAX_FIELD_ECHOED = 80


def quoted(value: object) -> str:
    """VALUE as a refusal quotes it: at most MAX_ECHOED characters, control characters
    neutralised, in quotes, so a hostile input can neither flood a reply or a log line nor
    reach a terminal with escapes."""
    return repr(printable(str(value), MAX_ECHOED))


def field_name(name: object) -> str:
    """A user-supplied field name or path as a refusal names it: cut to MAX_FIELD_ECHOED
    characters, control characters (ESC, newline) neutralised."""
    return printable(str(name), MAX_FIELD_ECHOED)


def plain_reason(error: Mapping[str, Any]) -> str:
    """Pydantic's reason in the words the model's own checks use: `must be at least 1 (got
    0)` for `Input should be greater than or equal to 1`, with what was given when it is
    short (as JSON: `true`, `"x"`)."""
    reason = str(error["msg"]).removeprefix("Value error, ")
    if error.get("type") == "missing":
        return "required (missing)"
    if error.get("type") == "model_type":  # (pydantic names the Python class)
        reason = "Input should be an object"
    if not reason.startswith("Input should be "):
        return reason
    reason = "must be " + reason.removeprefix("Input should be ")
    for pydantic_words, words in _BOUNDS:
        reason = reason.replace(pydantic_words, words)
    given = error.get("input")
    if isinstance(given, bool | int | float | str) and given is not None:
        echoed = json.dumps(given)
        if len(echoed) <= MAX_ECHOED:
            reason += f" (got {echoed})"
    return reason


_BOUNDS = (
    ("greater than or equal to", "at least"),
    ("less than or equal to", "at most"),
    ("greater than", "above"),
    ("less than", "below"),
)


def describe_validation_error(exc: ValidationError) -> str:
    """One line: the first problems as `field: reason`, joined with `; `."""
    return describe_errors(exc.errors(include_url=False, include_input=True))


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """`describe_validation_error` for pydantic's error dicts (FastAPI's too): linear in the
    number of problems, and short however many there are."""
    parts: dict[str, None] = {}
    more = 0
    for error in errors:
        where = field_location(tuple(part for part in error["loc"] if part != "body"))
        reason = "unknown field" if error["type"] == "extra_forbidden" else plain_reason(error)
        item = f"{field_name(where)}: {reason}"
        if item in parts:
            continue
        if len(parts) < MAX_PROBLEMS:
            parts[item] = None
        else:
            more += 1
    text = "; ".join(parts)
    return f"{text}; and {more} more" if more else text
