"""The steps a control moves through, and how its values read and parse.

Rates and durations span six orders of magnitude, so their steps are log-like (1, 1.5, 2, 3,
5, 7.5 per decade): one key press is a similar change anywhere on the range, and a coarse
step is a decade.

The steps span what a slider shows, not what a link may have: a typed value is parsed into
the field's unit (by the model's parsers) and goes to the engine, whose gate alone says what
is allowed, in the same words for every door. A value past a slider's end pins its bar there.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from engine.model.spec import UNLIMITED_RATE
from engine.model.units import (
    UnitError,
    format_duration_ms,
    format_rate,
    format_ratio,
    parse_duration_ms,
    parse_rate,
    parse_ratio,
)
from shaper_tui.fault_fields import OFF
from shaper_tui.link_edits import OUTAGE_EVERY_MS, OUTAGE_FOR_MS

DECADE = (1.0, 1.5, 2.0, 3.0, 5.0, 7.5)


def decades(low: float, high: float, mantissas: Sequence[float] = DECADE) -> list[float]:
    """Every mantissa * 10**k from `low` to `high`, both included."""
    values: list[float] = []
    exponent = math.floor(math.log10(low))
    while True:
        for mantissa in mantissas:
            value = round(mantissa * 10**exponent, 12)
            if value > high * (1 + 1e-9):
                return values
            if value >= low * (1 - 1e-9):
                values.append(value)
        exponent += 1


#: A number with no unit: it means the unit the control shows (`Scale.bare`).
_BARE = re.compile(r"\s*[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?\s*")
#: A number and its unit (the group).
_UNIT = re.compile(r"\s*[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?\s*([a-zA-Z%/]*)\s*")


def _no_unit(_value: float) -> tuple[str, str]:
    return "", ""


@dataclass(frozen=True)
class Scale:
    steps: tuple[float, ...]
    coarse: int
    format: Callable[[float], str]
    parse: Callable[[str], float]
    unit_hint: str
    #: For the value shown, the unit a bare number is read in: (as typed, as shown), such as
    #: ("ms", "ms") or ("%", "%"); ("", "") where the figure shown has no unit.
    bare: Callable[[float], tuple[str, str]] = _no_unit
    #: Where the first step up from the lowest value goes, if not to the next step (an outage
    #: switched on from a slider starts at the documented 500 ms every 5 s).
    first: float | None = None

    @property
    def minimum(self) -> float:
        return self.steps[0]

    @property
    def maximum(self) -> float:
        return self.steps[-1]

    def clamp(self, value: float) -> float:
        return min(self.maximum, max(self.minimum, value))

    def _index(self, value: float) -> int | None:
        """The step's index if `value` is (within rounding) one of the steps."""
        i = bisect.bisect_left(self.steps, value * (1 - 1e-9))
        if i < len(self.steps) and math.isclose(self.steps[i], value, rel_tol=1e-9, abs_tol=1e-12):
            return i
        return None

    def step(self, value: float, count: int) -> float:
        """`count` steps up (or down, if negative). A value between steps first snaps to the
        neighbouring step in the direction of travel, which counts as one step."""
        if count == 0:
            return self.clamp(value)
        if (count > 0 and value >= self.maximum) or (count < 0 and value <= self.minimum):
            return value  # at an end, or past it (typed): further out is not the slider's
        if count > 0 and self.first is not None and value <= self.minimum:
            return self.first
        index = self._index(value)
        if index is None:
            above = bisect.bisect_left(self.steps, value)
            index = above if count > 0 else above - 1
            count += -1 if count > 0 else 1
        target = min(len(self.steps) - 1, max(0, index + count))
        return self.steps[target]

    def fraction(self, value: float) -> float:
        """Where `value` sits on the bar, 0..1, evenly by step (so log-like)."""
        value = self.clamp(value)
        last = len(self.steps) - 1
        i = bisect.bisect_right(self.steps, value) - 1
        if i >= last:
            return 1.0
        low, high = self.steps[i], self.steps[i + 1]
        within = (value - low) / (high - low) if high > low else 0.0
        return (i + within) / last

    def read(self, text: str, shown: float = 0.0) -> float:
        """Typed text in the field's unit, a bare number in the unit the control shows for
        `shown` (`1` on a Loss showing `0 %` is 1 %, `75` on a Latency showing `0 ms` is
        75 ms); UnitError (a ValueError) if it is no value of that unit. Whether the value is
        allowed is the engine's gate's to say, not the slider's."""
        if _BARE.fullmatch(text):
            text = text.strip() + self.bare(shown)[0]
        return self.parse(text)

    def hint(self, shown: float) -> str:
        """The prompt's hint: examples, and what a bare number means."""
        unit = self.bare(shown)[1]
        return f"{self.unit_hint}; a bare number is in {unit}" if unit else self.unit_hint


def _rate_text(bps: float) -> str:
    if bps <= 0:
        return "blocked"
    if bps >= UNLIMITED_RATE:
        return "unlimited"
    return format_rate(bps)


def _rate_parse(text: str) -> float:
    """The engine's own rate parser (every door takes the same words: `unlimited`,
    `blocked`, `10mbit`), so what the TUI shows can be typed anywhere."""
    return float(parse_rate(text))


def _rate_unit(bps: float) -> tuple[str, str]:
    """The unit `format_rate` shows `bps` in; Mbit/s for `blocked` and `unlimited`."""
    if 0 < bps < UNLIMITED_RATE:
        for factor, typed, shown in ((1e9, "gbit", "Gbit/s"), (1e6, "mbit", "Mbit/s"),
                                     (1e3, "kbit", "kbit/s")):  # fmt: skip
            if bps >= factor:
                return typed, shown
        return "bit", "bit/s"
    return "mbit", "Mbit/s"


def _duration_unit(ms: float) -> tuple[str, str]:
    """The unit `_duration_text` shows `ms` in."""
    if ms >= 1000:
        return "s", "s"
    if 0 < ms < 1:
        return "us", "µs"
    return "ms", "ms"


def _percent(_ratio: float) -> tuple[str, str]:
    return "%", "%"


def _duration_text(ms: float) -> str:
    return "0 ms" if ms <= 0 else format_duration_ms(ms)


def _ratio_text(ratio: float) -> str:
    return "0 %" if ratio <= 0 else format_ratio(ratio)


def _strength_text(value: float) -> str:
    return f"{value:.2f}"


def _packets_text(value: float) -> str:
    return f"{int(value)} pkts"


def _packets_parse(text: str) -> float:
    cleaned = text.strip().lower().removesuffix("pkts").removesuffix("packets").strip()
    try:
        count = int(cleaned)
    except ValueError:
        raise UnitError(f"{text!r} is not a whole number of packets") from None
    return float(count)


def _fraction_parse(text: str) -> float:
    return float(parse_ratio(text))


def _percent_parse(text: str) -> float:
    """A share as the control shows it, in % (a bare number has become one by now)."""
    unit = _UNIT.fullmatch(text)
    if unit is not None and unit.group(1) != "%":
        raise UnitError(f"unknown unit {unit.group(1)[:10]!r} (use %)")
    return float(parse_ratio(text))  # no number at all: the model's parser says so


RATE = Scale(
    steps=(0.0, *decades(10_000, UNLIMITED_RATE)),
    coarse=len(DECADE),
    format=_rate_text,
    parse=_rate_parse,
    unit_hint="e.g. 20mbit, 512kbit, 1.5gbit, blocked, unlimited",
    bare=_rate_unit,
)
DURATION = Scale(
    steps=(0.0, *decades(1, 10_000)),
    coarse=len(DECADE),
    format=_duration_text,
    parse=parse_duration_ms,
    unit_hint="e.g. 150ms, 1.5s, 0",
    bare=_duration_unit,
)
#: An outage's period and length: their first step from 0 switches one on at the default.
OUTAGE_EVERY = replace(DURATION, first=OUTAGE_EVERY_MS)
OUTAGE_FOR = replace(DURATION, first=OUTAGE_FOR_MS)
LOSS = Scale(
    steps=(0.0, *decades(0.0001, 1.0, (1.0, 2.0, 5.0))),
    coarse=3,
    format=_ratio_text,
    parse=_percent_parse,
    unit_hint="e.g. 1.5%, 0.1%",
    bare=_percent,
)
STRENGTH = Scale(
    steps=tuple(round(i * 0.05, 2) for i in range(21)),
    coarse=4,
    format=_strength_text,
    parse=_fraction_parse,
    unit_hint="0 to 1 (how much of the jitter applies), e.g. 0.5 or 50%",
)
QUEUE = Scale(
    steps=tuple(decades(1, 100_000, (1.0, 2.0, 5.0))),
    coarse=3,
    format=_packets_text,
    parse=_packets_parse,
    unit_hint="packets, e.g. 100",
)


#: Byte units a fault's trigger is typed in (decimal, as the figures say them, and binary).
_BYTE_UNITS = {"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 1 << 10,
               "mib": 1 << 20, "gib": 1 << 30}  # fmt: skip


def _bytes_text(count: float) -> str:
    for factor, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if count >= factor:
            return f"{count / factor:.3g} {unit}"
    return f"{count:.0f} B"


def _bytes_parse(text: str) -> float:
    unit = _UNIT.fullmatch(text)
    if unit is None or unit.group(1).lower() not in _BYTE_UNITS:
        raise UnitError(f"{text.strip()[:20]!r} is no byte count (e.g. 100kB, 1.5MB, 0)")
    number = float(text.strip()[: len(text.strip()) - len(unit.group(1))])
    return float(round(number * _BYTE_UNITS[unit.group(1).lower()]))


def _bytes_unit(count: float) -> tuple[str, str]:
    """The unit `_bytes_text` shows `count` in."""
    for factor, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if count >= factor:
            return unit, unit
    return "B", "B"


def _or_off(scale: Scale, first: float) -> Scale:
    """`scale` with OFF below its steps (a fault's part not set: shown and typed `off`), its
    first step up from OFF going to `first`."""

    def text(value: float) -> str:
        return "off" if value < 0 else scale.format(value)

    def parse(typed: str) -> float:
        return OFF if typed.strip().lower() == "off" else scale.parse(typed)

    def bare(value: float) -> tuple[str, str]:
        return scale.bare(max(value, first))

    hint = f"{scale.unit_hint}, off"
    return replace(scale, steps=(OFF, *scale.steps), format=text, parse=parse, bare=bare,
                   unit_hint=hint, first=first)  # fmt: skip


#: A connection fault's parts: a trigger in bytes, one in time (ms, from 10 ms to an hour),
#: the share of connections, a hold in ms; each `off` below its steps.
FAULT_BYTES = _or_off(Scale(steps=(0.0, *decades(1000, 1e10)), coarse=len(DECADE),
                            format=_bytes_text, parse=_bytes_parse,
                            unit_hint="e.g. 100kB, 1.5MB, 0 (at once)", bare=_bytes_unit),
                      first=100_000.0)  # fmt: skip
FAULT_AFTER = _or_off(replace(DURATION, steps=(0.0, *decades(10, 3_600_000))), first=10_000.0)
FAULT_SHARE = _or_off(LOSS, first=1.0)
FAULT_HOLD = _or_off(replace(DURATION, steps=DURATION.steps[1:]), first=500.0)
