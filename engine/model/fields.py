"""The field types of a spec: numbers that may come as text with a unit, and strict models.

A spec's numbers may be written as the seed writes them (bit/s, fractions, milliseconds) or
with a unit (`10mbit`, `1%`, `50ms`); every model refuses unknown fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from engine.model.units import (
    MAX_TEXT,
    RATE_PATTERN,
    UNIT_PATTERN,
    UnitError,
    format_bytes,
    format_duration_ms,
    format_rate,
    format_ratio,
    format_seconds,
    parse_bytes,
    parse_duration_ms,
    parse_rate,
    parse_ratio,
    parse_seconds,
)
from engine.model.units import UNLIMITED_RATE as UNLIMITED_RATE


def tolerant(parser: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Apply a unit parser to strings only, so pydantic reports wrong types in its own words."""

    def parse(value: Any) -> Any:
        if isinstance(value, str | float) and not isinstance(value, bool):
            try:
                return parser(value)
            except UnitError as exc:
                raise ValueError(str(exc)) from None
            except (OverflowError, ValueError, TypeError):  # a number too big for the unit
                raise ValueError("not a usable number") from None
        return value

    return parse


def _compact_number(value: float) -> float | int:
    """Print 50.0 as 50: the seed's Rust reader takes integers for milliseconds."""
    return int(value) if float(value).is_integer() else value


def with_units(
    low: float, high: float, what: str, pattern: str = UNIT_PATTERN, kind: str = "number"
) -> WithJsonSchema:
    """What a request may carry (the schema pydantic derives knows only the parsed number):
    a number (`kind`: JSON Schema's number or integer) in range, or text with a unit, whose
    range the schema cannot say."""
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": kind, "minimum": low, "maximum": high},
                {"type": "string", "maxLength": MAX_TEXT, "pattern": pattern},
            ],
            "description": what,
        },
        mode="validation",
    )


#: The highest rate a spec takes, in bit/s (ten times what `unlimited` stands for).
MAX_RATE = 10 * UNLIMITED_RATE
_parse_rate = tolerant(parse_rate)


def in_range(value: float, low: float, high: float, unit: Callable[[float], str]) -> float:
    """`value`, or ValueError saying the range in the field's unit: `must be at most 3600 s
    (got 5000 s)` rather than pydantic's `Input should be less than or equal to 3600000`,
    which names a number in a unit the person never typed (the schema still says the range).
    Where the unit rounds both to the same words, the plain numbers."""
    if low <= value <= high:
        return value
    bound, words = (high, "at most") if value > high else (low, "at least")
    shown, limit = unit(value), unit(bound)
    if shown == limit:
        shown, limit = str(value), str(bound)
    raise ValueError(f"must be {words} {limit} (got {shown})")


def _rate(value: Any) -> Any:
    """A rate given as a plain number is judged against the range as given, before it is cut
    to whole bit/s: 1e11 + 0.00002 is over the top and -0.5 under zero, as the schema says,
    although both would round into the range."""
    if isinstance(value, float) and math.isfinite(value) and not 0 <= value <= MAX_RATE:
        in_range(value, 0, MAX_RATE, format_rate)
    return _parse_rate(value)


def checked(
    kind: type, parse: Callable[[Any], Any], low: float, high: float, unit: Callable[[float], str]
) -> BeforeValidator:
    """A unit field's one check: `parse` (text with a unit), then the range (`in_range`).
    One call per field rather than a parser and an after-validator: a client sends every
    field of a spec, 280,000 numbers for 10,000 flows (issue 38). A value already of the
    field's `kind` and in range is taken at once; anything else (a boolean, a list) is left
    for pydantic to refuse in its own words."""

    kinds = (int, float) if kind is float else (int,)  # (JSON writes 2.0 as 2)

    def check(value: Any) -> Any:
        if type(value) in kinds and low <= value <= high:
            return value
        value = parse(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        if kind is float and isinstance(value, int):
            try:
                value = float(value)
            except OverflowError:  # (an integer of 400 digits: pydantic says no number)
                return value
        return in_range(value, low, high, unit)

    return BeforeValidator(check)


Rate = Annotated[
    int,
    checked(int, _rate, 0, MAX_RATE, format_rate),
    with_units(0, MAX_RATE, "bit/s, or with a unit: 10mbit, 1.5gbit, unlimited", RATE_PATTERN),
]
Ratio = Annotated[
    float,
    checked(float, tolerant(parse_ratio), 0.0, 1.0, format_ratio),
    with_units(0, 1, "a fraction, or a percentage: 1.5%"),
]
Millis = Annotated[
    float,
    checked(float, tolerant(parse_duration_ms), 0.0, 3_600_000.0, format_duration_ms),
    PlainSerializer(_compact_number),
    with_units(0, 3_600_000, "milliseconds, or with a unit: 50ms, 1.5s"),
]


#: A connection fault's time and size triggers: at most a week, at most 2**50 bytes (a fault
#: set further out is a mistake).
MAX_SECONDS = 7 * 24 * 3600.0
MAX_BYTES = 1 << 50
Seconds = Annotated[
    float,
    checked(float, tolerant(parse_seconds), 0.0, MAX_SECONDS, format_seconds),
    with_units(0, MAX_SECONDS, "seconds, or with a unit: 2s, 500ms, 1.5min"),
]
ByteCount = Annotated[
    int,
    checked(int, tolerant(parse_bytes), 0, MAX_BYTES, format_bytes),
    with_units(0, MAX_BYTES, "bytes, or with a unit: 100kB, 1.5MB, 64KiB", kind="integer"),
]


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a spec must never silently do nothing."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, frozen=True, allow_inf_nan=False, strict=True
    )


#: Bytes added to (or, negative, taken off) each packet's length for the rate limiter.
Overhead = Annotated[int, Field(ge=-1000, le=10_000)]
