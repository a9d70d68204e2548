"""Why a control request cannot be read, in the one-line `field: reason` words every door
uses: its own module, beside the server that answers with it."""

from __future__ import annotations

from pydantic import ValidationError

from engine.model.validation_errors import describe_errors, quoted
from engine.protocol.messages import REQUEST_TYPES


def request_problem(exc: ValidationError) -> str:
    """Why a control request cannot be read, in the one-line `field: reason` words of every
    door (a spec's field named as HTTP names it: `default_link.egress.latency`); an unknown
    `type` answered with the types a client may send."""
    errors = exc.errors(include_url=False, include_input=True)
    if not errors:
        return "not a message"
    first = errors[0]
    if first["type"] == "union_tag_invalid":
        tag = quoted(first["ctx"]["tag"])
        return f"type: unknown message type {tag} (use {', '.join(REQUEST_TYPES)})"
    if first["type"] == "union_tag_not_found":
        return f"type: missing (use {', '.join(REQUEST_TYPES)})"
    if not first["loc"]:
        return "not a message: must be a JSON object"
    return describe_errors([{**error, "loc": _in_message(error["loc"])} for error in errors])


def _in_message(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A field's place within the message: without the message's tag, and a set_spec's
    spec's fields named as in a spec (as HTTP, SIGHUP and the CLI name them)."""
    rest = loc[1:]
    if loc[:1] == ("set_spec",) and rest[:1] == ("spec",) and len(rest) > 1:
        return rest[1:]
    return rest
