"""The wake margin follows the longest lateness of recent timed sleeps, within its bounds."""

from __future__ import annotations

from engine.core.wake_margin import CEILING, FLOOR, WINDOW, WakeMargin


def test_starts_at_the_ceiling_and_falls_to_the_floor_on_a_punctual_machine() -> None:
    margin = WakeMargin(now=0.0)
    assert margin.value == CEILING
    now = 0.0
    while now < WINDOW * 2 - 0.01:  # not yet proven punctual
        now += 0.01
        margin.observe(0.00001, now)
        assert margin.value == CEILING, now
    margin.observe(0.00001, WINDOW * 2 + 0.01)
    assert margin.value == FLOOR


def punctual(now: float) -> WakeMargin:
    """A margin that has seen two windows of punctual wake-ups up to `now`."""
    margin = WakeMargin(now=now - 2 * WINDOW - 0.01)
    margin.observe(0.0, now - WINDOW - 0.01)
    margin.observe(0.0, now)
    assert margin.value == FLOOR
    return margin


def test_a_late_wake_raises_it_at_once_and_is_forgotten_after_one_to_two_windows() -> None:
    margin = punctual(now=0.0)
    margin.observe(0.0007, now=1.0)
    assert margin.value == 0.0007
    now = 1.0
    while now < WINDOW * 2 - 0.01:  # remembered through this window and the next
        now += 0.01
        margin.observe(0.0002, now)
        assert margin.value == 0.0007, now
    margin.observe(0.0002, WINDOW * 2 + 0.01)
    assert margin.value == 0.0002


def test_a_long_silence_forgets_everything() -> None:
    margin = punctual(now=0.0)
    margin.observe(0.0015, now=0.5)
    margin.observe(0.0002, now=WINDOW * 5)  # no timed sleep for a long while (polling)
    assert margin.value == 0.0002


def test_bounded_by_the_ceiling_and_negative_lateness_counts_as_none() -> None:
    margin = punctual(now=0.0)
    margin.observe(0.05, now=0.1)  # the host took the CPU away for 50 ms
    assert margin.value == CEILING
    margin.observe(-0.001, now=WINDOW * 5)
    assert margin.value == FLOOR


def test_a_lower_ceiling_holds_from_the_start() -> None:
    margin = WakeMargin(now=0.0, ceiling=FLOOR)  # the default (run without --precise)
    assert margin.value == FLOOR
    margin.observe(0.003, now=1.0)
    assert margin.value == FLOOR
