"""Deadlines that are never early on a clock of float seconds, at any reading of the clock.

A float sum is rounded to the nearest double, so `arrival + latency` may come out below the
exact sum: at 1,136 s on the clock, a frame held for 10 ms left after 9.99999999999 ms, on
some machines every time (it depends only on the binade of the clock's reading). A configured
delay is a floor, so each deadline is the exact sum rounded up instead (`not_before`; inline
on the per-frame path, for a subtraction and a comparison), and a clock read in integer
nanoseconds is turned into seconds rounded the safe way: an arrival up, the time a release is
decided at down. So a deadline is at most one float step late (0.2 ps at 1,136 s on the
clock, 15 ns at 10^8 s) and never early. Integer nanoseconds end to end would be exact too,
but every caller and test of the core would change units, and each serialised packet would
cost a ceiling division of integers (measured: some 55 ns more than the float division); this
keeps the core's seconds and, measured per frame, its cost.
"""

from __future__ import annotations

from math import ceil, frexp, inf, ldexp, nextafter

NANOSECONDS = 1_000_000_000

#: Below this a float's steps are not those of its binade (subnormals), and above it the
#: binade's end overflows: no span is kept (no clock reads either).
SMALLEST_SPAN_START = 2.0**-1000
LARGEST_SPAN_START = 2.0**1000
#: The span `exact_span` gives when it keeps none: no float is in it.
NO_SPAN = (inf, -inf, 0.0)

__all__ = [
    "NANOSECONDS",
    "NO_SPAN",
    "exact_span",
    "not_before",
    "seconds_at_least",
    "seconds_at_most",
]


def not_before(t: float, delay: float) -> float:
    """The least float not below `t + delay` computed exactly: the rounded sum, one step up
    when rounding took it below the exact sum (found exactly by Knuth's two-sum)."""
    due = t + delay
    back = due - t
    if (t - (due - back)) + (delay - back) > 0.0:  # the exact sum is `due` plus this
        return nextafter(due, inf)
    return due


def exact_span(t: float, delay: float) -> tuple[float, float, float]:
    """(low, high, step) such that for every float x with low <= x < high, `x + step` is
    exactly `not_before(x, delay)`: in one binade of the clock a float sum is a multiple of
    the binade's float step, so `delay` rounded up to such a multiple makes every sum exact.
    For the per-frame path: a deadline for two comparisons and an addition, no call."""
    if not SMALLEST_SPAN_START <= t < LARGEST_SPAN_START or not 0.0 <= delay < inf:
        return NO_SPAN
    exponent = frexp(t)[1]  # t is in [2**(exponent - 1), 2**exponent)
    unit = ldexp(1.0, exponent - 53)  # the float step there
    step = ceil(delay / unit) * unit
    low, high = ldexp(1.0, exponent - 1), ldexp(1.0, exponent) - step
    return (low, high, step) if low < high else NO_SPAN


def seconds_at_least(nanoseconds: int) -> float:
    """`nanoseconds` in seconds, never below the exact value (for an arrival: never early).
    Integer division is rounded to the nearest float, so one step up is always enough."""
    return nextafter(nanoseconds / NANOSECONDS, inf)


def seconds_at_most(nanoseconds: int) -> float:
    """`nanoseconds` in seconds, never above the exact value (for the time a release is
    decided at: what is due by then is due by the clock)."""
    return nextafter(nanoseconds / NANOSECONDS, -inf)
