"""Control scales: log-like steps, snapping from values between steps, and unit parsing."""

from __future__ import annotations

import pytest

from engine.model.spec import UNLIMITED_RATE, LinkSpec
from shaper_tui.scales import (
    DURATION,
    LOSS,
    OUTAGE_EVERY,
    OUTAGE_FOR,
    QUEUE,
    RATE,
    STRENGTH,
    Scale,
    decades,
)


def test_rate_runs_from_blocked_to_unlimited_in_log_steps() -> None:
    assert RATE.minimum == 0 and RATE.maximum == UNLIMITED_RATE
    assert RATE.format(0) == "blocked" and RATE.format(UNLIMITED_RATE) == "unlimited"
    assert RATE.format(12_500_000) == "12.5 Mbit/s"
    ratios = [b / a for a, b in zip(RATE.steps[1:], RATE.steps[2:], strict=False)]
    assert all(1.3 <= r <= 1.7 for r in ratios), ratios  # similar steps across the range
    assert RATE.step(10e6, RATE.coarse) == 100e6  # a coarse step is a decade


def test_duration_reaches_ten_seconds_with_human_units() -> None:
    assert DURATION.maximum == 10_000
    assert DURATION.format(250) == "250 ms"
    assert DURATION.format(1500) == "1.5 s"
    assert DURATION.format(0) == "0 ms"
    assert DURATION.read("1.5s") == 1500


def test_steps_from_a_value_between_steps_snap_to_the_neighbour() -> None:
    assert RATE.step(12.5e6, 1) == 15e6
    assert RATE.step(12.5e6, -1) == 10e6
    assert RATE.step(12.5e6, 2) == 20e6
    assert RATE.step(12.5e6, -2) == 7.5e6


def test_steps_stop_at_the_ends() -> None:
    assert RATE.step(0, -1) == 0
    assert RATE.step(RATE.maximum, 5) == RATE.maximum
    assert LOSS.step(1.0, 1) == 1.0
    assert QUEUE.step(1, -3) == 1


def test_loss_strength_and_queue_formats() -> None:
    assert LOSS.format(0.015) == "1.5 %"
    assert LOSS.read("1.5%") == pytest.approx(0.015)
    assert STRENGTH.steps[0] == 0 and STRENGTH.steps[-1] == 1
    assert QUEUE.read("100") == 100 and QUEUE.format(100) == "100 pkts"


@pytest.mark.parametrize(
    ("scale", "text", "words"),
    [
        (RATE, "fast", "fast"),
        (DURATION, "20 parsecs", "parsecs"),
        (DURATION, "-5ms", "not a duration: '-5ms'"),  # the model's parser's words
        (QUEUE, "1.5", "whole number"),
    ],
)
def test_bad_text_raises_a_clear_error(scale: object, text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        scale.read(text)  # type: ignore[attr-defined]


def test_values_past_a_sliders_ends_are_read_as_typed() -> None:
    """The slider's range is what it shows, not a rule: the engine's gate judges the value
    (99 Gbit/s and 30 s are allowed there, 150 % is not, in the gate's words)."""
    assert RATE.read("99gbit") == 99e9
    assert DURATION.read("30s") == 30_000
    assert LOSS.read("150%") == pytest.approx(1.5)
    assert RATE.fraction(99e9) == 1 and DURATION.fraction(30_000) == 1  # the bar: at its end
    # A step further out leaves a value past the end; a step back in goes to the end.
    assert DURATION.step(30_000, 1) == 30_000 and DURATION.step(30_000, DURATION.coarse) == 30_000
    assert DURATION.step(30_000, -1) == DURATION.maximum


def test_bar_position_is_even_by_step() -> None:
    assert RATE.fraction(0) == 0 and RATE.fraction(RATE.maximum) == 1
    middle = RATE.steps[len(RATE.steps) // 2]
    assert RATE.fraction(middle) == pytest.approx((len(RATE.steps) // 2) / (len(RATE.steps) - 1))


def test_every_step_is_a_value_the_spec_accepts() -> None:
    for rate in RATE.steps:
        LinkSpec(rate=int(rate))
    for ms in DURATION.steps:
        LinkSpec(latency=ms, jitter=ms)
    for ratio in LOSS.steps:
        LinkSpec(loss=ratio)


def test_decades() -> None:
    assert decades(1, 100, (1.0, 5.0)) == [1, 5, 10, 50, 100]


@pytest.mark.parametrize(
    ("scale", "shown", "text", "value"),
    [
        (LOSS, 0.0, "1", 0.01),  # issue 35 item 2: a bare 1 on Loss is 1 %, not 100 %
        (LOSS, 0.05, "0.5", 0.005),
        (LOSS, 0.0, "1%", 0.01),
        (DURATION, 0.0, "75", 75.0),
        (DURATION, 1500.0, "2", 2000.0),  # the control shows seconds
        (DURATION, 1500.0, "75ms", 75.0),
        (RATE, 20e6, "5", 5e6),  # shows Mbit/s
        (RATE, 512e3, "256", 256e3),  # shows kbit/s
        (RATE, 0.0, "10", 10e6),  # `blocked` and `unlimited`: Mbit/s, as the hint says
        (RATE, 10e9, "10", 10e6),
        (RATE, 20e6, "1gbit", 1e9),
        (QUEUE, 100.0, "50", 50.0),
        (STRENGTH, 0.5, "0.25", 0.25),
    ],
)
def test_a_bare_number_is_in_the_unit_the_control_shows(
    scale: Scale, shown: float, text: str, value: float
) -> None:
    assert scale.read(text, shown) == pytest.approx(value)


def test_the_hint_says_what_a_bare_number_means() -> None:
    assert LOSS.hint(0.0).endswith("a bare number is in %")
    assert RATE.hint(512e3).endswith("a bare number is in kbit/s")
    assert DURATION.hint(0.0).endswith("a bare number is in ms")
    assert QUEUE.hint(1.0) == QUEUE.unit_hint


def test_a_loss_in_another_unit_is_one_line_naming_the_unit() -> None:
    with pytest.raises(ValueError, match=r"^unknown unit 'ms' \(use %\)$"):
        LOSS.read("5ms")
    with pytest.raises(ValueError, match=r"^not a ratio: 'lots'$"):
        LOSS.read("lots")


def test_the_first_step_of_an_outage_slider_is_the_documented_default() -> None:
    """500 ms every 5 s (docs/tui.md), not the 1 ms step after 0 (issue 35 item 3)."""
    assert OUTAGE_EVERY.step(0.0, 1) == 5000.0
    assert OUTAGE_FOR.step(0.0, 1) == 500.0
    assert OUTAGE_EVERY.step(0.0, OUTAGE_EVERY.coarse) == 5000.0
    assert OUTAGE_EVERY.step(5000.0, 1) == 7500.0 and OUTAGE_EVERY.step(5000.0, -1) == 3000.0
