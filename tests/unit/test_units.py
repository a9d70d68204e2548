import pytest

from engine.model.units import (
    UnitError,
    format_duration_ms,
    format_rate,
    format_ratio,
    format_share,
    parse_duration_ms,
    parse_rate,
    parse_ratio,
)


@pytest.mark.parametrize(
    ("text", "bits"),
    [
        ("10mbit", 10_000_000),
        ("1.5gbit", 1_500_000_000),
        ("500kbit", 500_000),
        ("12500kbps", 100_000_000),
        ("64000", 64_000),
        ("2Mbit/s", 2_000_000),
        (7, 7),
    ],
)
def test_rates(text: str, bits: int) -> None:
    assert parse_rate(text) == bits


@pytest.mark.parametrize(
    ("text", "ms"), [("50ms", 50.0), ("1.5s", 1500.0), ("200us", 0.2), ("20", 20.0), (3, 3.0)]
)
def test_durations(text: str, ms: float) -> None:
    assert parse_duration_ms(text) == pytest.approx(ms)


def test_ratios() -> None:
    assert parse_ratio("1.5%") == pytest.approx(0.015)
    assert parse_ratio("0.2") == pytest.approx(0.2)


@pytest.mark.parametrize("bad", ["fast", "10 furlongs", "", "1.2.3mbit"])
def test_bad_rates_say_why(bad: str) -> None:
    with pytest.raises(UnitError):
        parse_rate(bad)


def test_formats() -> None:
    assert format_rate(12_500_000) == "12.5 Mbit/s"
    assert format_rate(1e9) == "1 Gbit/s"
    assert format_duration_ms(250) == "250 ms"
    assert format_duration_ms(1500) == "1.5 s"
    assert format_ratio(0.015) == "1.5 %"


@pytest.mark.parametrize(
    ("ratio", "text"),
    [
        (1.0, "100%"),
        (0.996, "99.6%"),
        (0.9996, "99.96%"),
        (0.034, "3.4%"),
        (0.0052, "0.52%"),
        (0.5, "50%"),
    ],
)
def test_a_share_is_never_in_exponent_form(ratio: float, text: str) -> None:
    """Issue 35 item 6: `1e+02%` was shown whenever the loss was 100 %."""
    assert format_share(ratio) == text
    assert format_ratio(1.0) == "100 %"
    assert format_duration_ms(1_500_000) == "1500 s"
    assert format_rate(150e9) == "150 Gbit/s"
