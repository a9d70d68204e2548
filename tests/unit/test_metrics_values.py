"""`/metrics` keeps every digit of a sample: a byte counter past a million printed with `:g`
lost its last digits, and a dashboard's `rate()` over it moved in steps."""

from __future__ import annotations

import math

from engine.model.spec import PASS_THROUGH
from engine.model.stats import DirectionStats, EngineStats, LinkStats
from engine.web.metrics import prometheus_text, sample_value


def test_counters_are_printed_whole() -> None:
    link = LinkStats(bytes_in=108_921_315, packets_in=1_234_567)
    stats = EngineStats(ingress=DirectionStats(direction="ingress", at=1.0,
                                               flows={"default": link}))  # fmt: skip
    page = prometheus_text(PASS_THROUGH, stats)
    line = next(
        line for line in page.splitlines()
        if line.startswith("linkshaper_bytes_total{") and 'stage="in"' in line
    )  # fmt: skip
    assert line.endswith(" 108921315"), line
    assert "e+" not in page.split("linkshaper_links", 1)[0], "a counter in exponent form"


def test_every_kind_of_value_reads_back_as_itself() -> None:
    for value in (0, 7, 108_921_315, 2**53 + 2, 0.25, 1e-7, 1e10, 123456.789):
        assert float(sample_value(value)) == value
    assert sample_value(math.inf) == "+Inf" and sample_value(-math.inf) == "-Inf"
    assert sample_value(math.nan) == "NaN"
