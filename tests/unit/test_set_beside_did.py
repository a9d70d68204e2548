"""Set beside did (issue 35, items 4, 11 and 12): what each panel says the link did, next to
what is set. The real app, fed the engine's messages as its engine link posts them (stats
samples ten a second on the worker's clock, a spec put in force), so the figures can be
checked against numbers known in advance."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.pilot import Pilot

from engine.model.spec import Direction, Spec
from engine.model.spec_patch import patch_spec
from engine.model.stats import DirectionStats, Drops, LinkStats
from shaper_tui.app import ShaperApp, create_app
from shaper_tui.messages import SpecArrived, StatsArrived
from shaper_tui.widgets.direction_panel import DirectionPanel
from shaper_tui.widgets.metric_spark import MetricSpark
from tests.scripted_engine import ScriptedEngine
from tests.tui_helpers import wait_until
from tests.unit.test_tui_snapshots import SPEC


class Feed:
    """Cumulative counters of both directions, advanced a tenth of a second at a time."""

    def __init__(self, app: ShaperApp) -> None:
        self.app = app
        self.at = 100.0
        self.counts: dict[Direction, dict[str, int]] = {
            d: dict.fromkeys(("in", "past", "loss", "queue"), 0) for d in ("ingress", "egress")
        }

    async def run(self, pilot: Pilot[Any], seconds: float, **per_direction: Any) -> None:
        """`seconds` of samples; per direction (ingress=..., egress=...) a dict of packets a
        second in, the share the queue drops, the share of the rest lost, p50 and p99."""
        for _ in range(round(seconds * 10)):
            self.at += 0.1
            for direction in ("ingress", "egress"):
                self.app.post_message(StatsArrived(self._sample(direction, per_direction)))
            await pilot.pause()

    def _sample(self, direction: Direction, given: dict[str, Any]) -> DirectionStats:
        load = {"pps": 1000, "queue": 0.0, "loss": 0.0, "p50": 20.0, "p99": 25.0}
        load.update(given.get(direction, {}))
        count = self.counts[direction]
        arrived = int(load["pps"] / 10)
        queued = round(arrived * load["queue"])
        count["in"] += arrived
        count["queue"] += queued
        count["past"] += arrived - queued
        count["loss"] += round((arrived - queued) * load["loss"])
        total = LinkStats(
            packets_in=count["in"], bytes_in=count["in"] * 1000, past_queue=count["past"],
            packets_out=count["past"] - count["loss"],
            bytes_out=(count["past"] - count["loss"]) * 1000,
            drops=Drops(loss=count["loss"], queue_full=count["queue"]),
        )  # fmt: skip
        return DirectionStats(
            direction=direction, at=self.at, pid=7, total=total,
            delay_samples=arrived if load.get("measured", True) else 0,
            delay_p50_ms=load["p50"], delay_p99_ms=load["p99"],
        )  # fmt: skip


def scenario(steps: Any, size: tuple[int, int] = (120, 40)) -> ShaperApp:
    """Run `steps(app, pilot, feed)` on the app attached to a silent scripted engine."""

    async def main() -> ShaperApp:
        app = create_app(ScriptedEngine(SPEC, samples=0), tag="tui:test")
        async with app.run_test(size=size) as pilot:
            await wait_until(pilot, lambda: app.spec == SPEC, 10,
                             "the engine's spec")  # fmt: skip
            await steps(app, pilot, Feed(app))
        return app

    return asyncio.run(main())


def text(widget: Any) -> str:
    return str(widget.render())


def figure(panel: DirectionPanel, key: str) -> str:
    return text(panel.sparks[key].figure).strip()


def test_loss_share_queue_limits_and_round_trip_set_beside_measured() -> None:
    """1 % lost of what got past a queue that drops 30 %: the panel says 1 %, not 0.7 %; the
    queue's limits as applied (the default 1000 ms too, in packets at the rate set); the
    round trip set (40 + 40 ms) beside the sum of the two directions' medians."""

    async def steps(app: ShaperApp, pilot: Pilot[Any], feed: Feed) -> None:
        await feed.run(pilot, 8.0, ingress={"pps": 10000, "queue": 0.3, "loss": 0.01,
                                            "p50": 45.0, "p99": 60.0},
                       egress={"p50": 41.0, "p99": 44.0})  # fmt: skip

    app = scenario(steps)
    ingress, egress = app.panels["ingress"], app.panels["egress"]
    assert figure(ingress, "lost").startswith("1% ")
    # 20 Mbit/s for 1 s is 1,625 full-size frames (1514 + 24 bytes on the wire).
    assert text(ingress.queue_limits) == "Q limit 1000 pkts, 1 s (1,625 pkts)"
    assert text(egress.queue_limits) == "Q limit 100 pkts, 1 s (406 pkts)"
    for panel in (ingress, egress):
        assert text(panel.rtt) == "RTT set 80 ms · measured 86 ms"


def test_the_delay_figure_follows_a_reset_within_two_seconds() -> None:
    """After 6 s at 41.4/61 ms, latency 0: three seconds later the figure is the new delay
    (a window of the last 64 reports kept `41.4/61 ms`)."""

    async def steps(app: ShaperApp, pilot: Pilot[Any], feed: Feed) -> None:
        await feed.run(pilot, 6.0, ingress={"p50": 41.4, "p99": 61.0})
        reset = Spec.model_validate({"default_link": {"ingress": {"rate": "20mbit"},
                                                      "egress": {"rate": "5mbit"}}})  # fmt: skip
        app.post_message(SpecArrived(reset, "set"))
        await pilot.pause()
        await feed.run(pilot, 3.0, ingress={"p50": 0.2, "p99": 0.4})

    app = scenario(steps)
    assert figure(app.panels["ingress"], "delay") == "0.2/0.4 ms"
    assert text(app.panels["ingress"].rtt) == "RTT set 0 ms · measured 20.2 ms"


def test_a_throughput_scale_recovers_from_a_spike_within_five_seconds() -> None:
    """Unlimited rate: a 4.4 Gbit/s burst, then 3 Mbit/s; ten samples (5 s at two a second)
    later the scale is 5M again (it followed 50 s of history before, and stayed at 5G)."""

    async def steps(app: ShaperApp, pilot: Pilot[Any], feed: Feed) -> None:
        out = app.panels["ingress"].sparks["out"]
        out.push(4.4e9, "burst")
        assert out.graph.ceiling == 5e9
        for _ in range(10):
            top = out.ceiling_for(None, 3e6)
            out.push(3e6, "steady", scale_text=f"{top:g}")
        assert out.graph.ceiling == 5e6

    scenario(steps)


def test_a_stand_still_after_an_extreme_setting_is_named_until_traffic_moves() -> None:
    async def steps(app: ShaperApp, pilot: Pilot[Any], feed: Feed) -> None:
        ingress = app.panels["ingress"]
        await feed.run(pilot, 2.0)
        lossy = patch_spec(SPEC, {"ingress.loss": "100%"})
        app.post_message(SpecArrived(lossy, "set"))
        await feed.run(pilot, 3.0, ingress={"pps": 0})
        assert not ingress.stall.has_class("-shown")  # the link stops it: nothing to explain
        app.post_message(SpecArrived(SPEC, "set"))
        await feed.run(pilot, 2.0, ingress={"pps": 0})
        assert ingress.stall.has_class("-shown")
        assert "since 100 % loss: TCP backs off" in text(ingress.stall)
        assert not app.panels["egress"].stall.has_class("-shown")
        await feed.run(pilot, 2.0)
        assert not ingress.stall.has_class("-shown")

    scenario(steps)


def test_the_panel_shows_the_new_lines_at_80x24() -> None:
    async def steps(app: ShaperApp, pilot: Pilot[Any], feed: Feed) -> None:
        await feed.run(pilot, 1.0)
        for panel in app.panels.values():
            for line in (panel.queue_limits, panel.rtt):
                assert line.region.width > 0 and line.region.height == 1
                assert app.screen.region.contains_region(line.region)
        assert isinstance(app.query_one("#ingress-delay"), MetricSpark)

    scenario(steps, size=(80, 24))
