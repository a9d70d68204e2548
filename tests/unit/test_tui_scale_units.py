"""What the panels' graphs say is true (issue 35, s23 item 3): every scale label carries its
unit (while blocked the In/Out scales read a bare `1` and `20k`), and a blocked link's sparse
drops read in `Lost` (it said `0/s` while `linkshaper stats` had `blocked=1.0/s`). The real
app, fed samples as its engine link posts them."""

from __future__ import annotations

import re
from typing import Any

from textual.pilot import Pilot

from engine.model.stats import DirectionStats, Drops, LinkStats
from shaper_tui.app import ShaperApp
from shaper_tui.messages import StatsArrived
from shaper_tui.widgets.metric_spark import MetricSpark
from tests.unit.test_set_beside_did import Feed, scenario

#: A scale's top and its unit: `20Mbit/s`, `1bit/s`, `500/s`, `20k/s`, `50ms`, `2s`.
WITH_UNIT = re.compile(r"[\d.]+[kMG]?(b/s|/s|ms|s)")


def labels(app: ShaperApp) -> dict[str, str]:
    """Each graph's label as shown (`In    20kbit/s`), by its id."""
    return {str(s.id): str(s.scale.render()) for s in app.query(MetricSpark)}


def test_every_scale_label_carries_its_unit() -> None:
    async def steps(app: ShaperApp, pilot: Pilot[Any], feed: Feed) -> None:
        await feed.run(pilot, 3.0, ingress={"pps": 1, "loss": 0.5}, egress={"pps": 20})
        shown = labels(app)
        assert len(shown) == 10, shown
        for name, text in shown.items():
            scale = text.split()[-1]
            assert WITH_UNIT.fullmatch(scale), f"{name}: {text!r} has no unit"

    scenario(steps, size=(80, 24))


async def blocked_drops(app: ShaperApp, pilot: Pilot[Any], seconds: float) -> list[str]:
    """Samples of a blocked download dropping one frame every 3 s (TCP's retries); the Lost
    figure as shown after each sample from the first drop on."""
    at, count, shown = 100.0, 0, []
    spark = app.query_one("#ingress-lost", MetricSpark)
    for tick in range(round(seconds * 10)):
        at += 0.1
        count += tick % 30 == 5
        total = LinkStats(packets_in=count, bytes_in=count * 60, drops=Drops(blocked=count))
        app.post_message(StatsArrived(DirectionStats(direction="ingress", at=at, pid=7,
                                                     total=total)))  # fmt: skip
        await pilot.pause()
        if count:
            shown.append(str(spark.figure.render()).strip())
    return shown


def test_sparse_blocked_drops_read_in_lost() -> None:
    async def steps(app: ShaperApp, pilot: Pilot[Any], feed: Feed) -> None:
        shown = await blocked_drops(app, pilot, 10.0)
        zero = [text for text in shown[10:] if text.endswith(" 0/s") or text == "0/s"]
        assert not zero, f"Lost read {zero[0]!r} while the link dropped one frame every 3 s"

    scenario(steps)
