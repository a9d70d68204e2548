"""Human units for rates, durations and ratios, parsed and printed the way tc users write them.

Everyone who has typed `tc qdisc ... rate 10mbit delay 50ms loss 1%` expects those words to
work here too, so the parsers accept tc's spellings and plain numbers in the spec's own units.
"""

from __future__ import annotations

import functools
import math
import re

from engine.model.errors import LinkshaperError

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
#: A number and a unit as text, for schemas (JSON Schema's regex dialect).
UNIT_PATTERN = r"^\s*[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?\s*[a-zA-Z%/]*\s*$"

#: What "no limit" means for a rate: at or above it a link has no rate limiter at all.
UNLIMITED_RATE = 10_000_000_000
#: Rates said in words, as the TUI shows them: every door takes what the TUI prints.
RATE_WORDS: dict[str, int] = {"unlimited": UNLIMITED_RATE, "blocked": 0}
#: A rate as text, for schemas: a number with a unit, or one of RATE_WORDS.
RATE_PATTERN = r"^\s*(unlimited|blocked|[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?\s*[a-zA-Z%/]*)\s*$"

# tc counts "kbit" as 1000 bit/s; "kbps" is kilobytes per second (tc's own, confusing, rule).
_RATE_UNITS: dict[str, float] = {
    "": 1.0,
    "bit": 1.0,
    "bps": 8.0,
    "kbit": 1e3,
    "k": 1e3,
    "kbps": 8e3,
    "mbit": 1e6,
    "m": 1e6,
    "mbps": 8e6,
    "gbit": 1e9,
    "g": 1e9,
    "gbps": 8e9,
    "tbit": 1e12,
}

_DURATION_UNITS_MS: dict[str, float] = {
    "": 1.0,
    "ms": 1.0,
    "msec": 1.0,
    "us": 1e-3,
    "usec": 1e-3,
    "s": 1e3,
    "sec": 1e3,
    "m": 60e3,
    "min": 60e3,
}


#: A size in bytes: SI multiples (`kB`, `MB`, `GB`, as toxiproxy and curl write them) and
#: binary ones (`KiB`, `MiB`, `GiB`); case is not looked at, so `kb` is kilobytes here.
_BYTE_UNITS: dict[str, int] = {
    "": 1, "b": 1, "byte": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}  # fmt: skip


class UnitError(LinkshaperError, ValueError):
    """A value whose unit or number cannot be understood."""


#: Longest text a value may be: a unit parser never needs more, and a long one is not a value.
MAX_TEXT = 64


def _quote(text: str) -> str:
    """The value as an error message may show it: cut short, so an error stays one line."""
    return repr(text if len(text) <= 20 else text[:20] + "…")


def _finite(number: float, text: str, what: str) -> float:
    if not math.isfinite(number):
        raise UnitError(f"not a finite {what}: {_quote(text)}")
    return number


@functools.lru_cache(maxsize=1024)
def _split(text: str, what: str) -> tuple[float, str]:
    """The number and unit of `text`; the same text is split once (a spec of 10,000 flows
    repeats a few unit texts; a text not understood raises each time)."""
    if len(text) > MAX_TEXT:
        raise UnitError(f"not a {what}: {_quote(text)} is too long")
    match = re.fullmatch(_NUMBER + r"\s*([a-zA-Z%/]*)", text.strip())
    if match is None:
        raise UnitError(f"not a {what}: {_quote(text)}")
    return _finite(float(match.group(1)), text, what), match.group(2).lower()


def _plain(value: float, what: str) -> float:
    """A number given without a unit; infinities and NaN are no values (JSON has neither, but
    Python's reader takes `1e400` as infinity). A boolean is no number, although Python's
    `True` is an int: `"rate": true` must never mean 1 bit/s."""
    if isinstance(value, bool):
        raise UnitError(f"not a {what}: a boolean is not a number")
    return _finite(float(value), str(value), what)


def parse_rate(value: str | float) -> int:
    """Bit/s from `10mbit`, `1.5gbit`, `500kbit`, `12500kbps`, a plain number of bit/s, or
    `unlimited` / `blocked` (RATE_WORDS): the one rate parser of every door."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return int(_plain(value, "rate"))
    word = RATE_WORDS.get(value.strip().lower()) if len(value) <= MAX_TEXT else None
    if word is not None:
        return word
    number, unit = _split(value, "rate")
    unit = unit.removesuffix("/s") if unit.endswith("/s") else unit
    if unit not in _RATE_UNITS:
        raise UnitError(
            f"unknown rate unit {_quote(unit)} (use bit, kbit, mbit, gbit, or unlimited)"
        )
    return round(_finite(number * _RATE_UNITS[unit], value, "rate"))


def parse_duration_ms(value: str | float) -> float:
    """Milliseconds from `50ms`, `1.5s`, `200us` or a plain number of milliseconds."""
    if not isinstance(value, str):
        return _plain(value, "duration")
    number, unit = _split(value, "duration")
    if unit not in _DURATION_UNITS_MS:
        raise UnitError(f"unknown duration unit {_quote(unit)} (use us, ms, s)")
    return _finite(number * _DURATION_UNITS_MS[unit], value, "duration")


def parse_seconds(value: str | float) -> float:
    """Seconds from `2s`, `500ms`, `1.5min` or a plain number of seconds (a connection
    fault's `after_s`, `within_s`)."""
    if not isinstance(value, str):
        return _plain(value, "duration")
    number, unit = _split(value, "duration")
    if unit == "":
        return number
    if unit not in _DURATION_UNITS_MS:
        raise UnitError(f"unknown duration unit {_quote(unit)} (use ms, s, min)")
    return _finite(number * _DURATION_UNITS_MS[unit] / 1000.0, value, "duration")


def parse_bytes(value: str | float) -> int:
    """Bytes from `100kB`, `1.5MB`, `64KiB` or a plain number of bytes (a connection fault's
    `after_bytes`, `within_bytes`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        number = _plain(value, "size")
        if not number.is_integer():
            raise UnitError(f"not a whole number of bytes: {value!r}")
        return int(number)
    number, unit = _split(value, "size")
    if unit not in _BYTE_UNITS:
        raise UnitError(f"unknown size unit {_quote(unit)} (use B, kB, MB, GB, KiB, MiB)")
    if _BYTE_UNITS[unit] == 1 and not number.is_integer():
        raise UnitError(f"not a whole number of bytes: {_quote(value)}")
    return round(_finite(number * _BYTE_UNITS[unit], value, "size"))


def parse_ratio(value: str | float) -> float:
    """A fraction from `1.5%` or a plain fraction such as `0.015`."""
    if not isinstance(value, str):
        return _plain(value, "ratio")
    number, unit = _split(value, "ratio")
    if unit == "%":
        return number / 100.0
    if unit == "":
        return number
    raise UnitError(f"unknown ratio unit {_quote(unit)} (use % or a fraction)")


def figure(number: float, digits: int = 3) -> str:
    """`number` to `digits` significant digits, never in exponent form: `100`, not the
    `1e+02` that `:.2g` prints for a loss of 100 %, and `1500`, not `1.5e+03`."""
    text = f"{number:.{digits}g}"
    if "e" not in text:
        return text
    if abs(number) >= 1:
        return f"{number:.0f}"
    return f"{number:.{digits - 1 - math.floor(math.log10(abs(number)))}f}"


def format_rate(bits_per_second: float) -> str:
    """`12.5 Mbit/s`: three significant digits, the largest unit that keeps the number ≥ 1."""
    for factor, unit in ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
        if abs(bits_per_second) >= factor:
            return f"{figure(bits_per_second / factor)} {unit}"
    return f"{figure(bits_per_second)} bit/s"


def format_duration_ms(ms: float) -> str:
    """`250 ms`, `1.5 s` or `300 µs`."""
    if ms >= 1000:
        return f"{figure(ms / 1000)} s"
    if 0 < ms < 1:
        return f"{figure(ms * 1000)} µs"
    return f"{figure(ms)} ms"


def format_seconds(seconds: float) -> str:
    """`2 s`, `1.5 s`, `250 ms`."""
    return format_duration_ms(seconds * 1000.0)


def format_bytes(count: float) -> str:
    """`100 kB`, `1.5 MB`, `512 B` (SI multiples, as `parse_bytes` reads them)."""
    for factor, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(count) >= factor:
            return f"{figure(count / factor)} {unit}"
    return f"{figure(count)} B"


def percent_figure(ratio: float, digits: int = 3) -> str:
    """`ratio` in percent to `digits` significant digits, and more where fewer would read
    100 for less than 100 % (a loss of 99.96 % is `99.96`, not a `100` that lets nothing
    through) or 0 for more than 0."""
    percent = ratio * 100
    text = figure(percent, digits)
    while digits < 9 and ((float(text) >= 100 > percent) or (float(text) <= 0 < percent)):
        digits += 1
        text = figure(percent, digits)
    return text


def format_ratio(ratio: float) -> str:
    """`1.5 %`, `100 %`, `99.96 %`."""
    return f"{percent_figure(ratio)} %"


def format_share(ratio: float, digits: int = 2) -> str:
    """A share in few characters, for a figure beside a graph: `3.4%`, `100%`, `0.52%`."""
    return f"{percent_figure(ratio, digits)}%"
