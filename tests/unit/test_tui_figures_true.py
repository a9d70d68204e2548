"""New-user report 35b, items 3, 8 and 9: figures beside the controls in one unit with them,
true right after a change, with their units. Fed the engine's messages as in
test_set_beside_did.py."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from engine.model.spec import Spec
from shaper_tui.app import ShaperApp
from shaper_tui.messages import SpecArrived
from shaper_tui.widgets.panel_text import delay_pair, rate_figure
from tests.unit.test_set_beside_did import Feed, scenario, text

SLOW = Spec.model_validate(
    {"default_link": {"ingress": {"rate": "20mbit", "latency": "1010ms"},
                      "egress": {"rate": "5mbit", "latency": "1010ms"}}}
)  # fmt: skip


def test_a_round_trip_of_a_second_or_more_reads_in_seconds_set_and_measured() -> None:
    """It read `RTT set 2020 ms · measured 2.07 s`."""

    async def steps(app: ShaperApp, pilot: Pilot[Any], feed: Feed) -> None:
        app.post_message(SpecArrived(SLOW, "set"))
        await pilot.pause()
        slow = {"p50": 1035.0, "p99": 1040.0}
        await feed.run(pilot, 3.0, ingress=slow, egress=slow)
        assert text(app.query_one("#ingress-latency")).endswith("1.01 s")

    app = scenario(steps)
    for panel in app.panels.values():
        assert text(panel.rtt) == "RTT set 2.02 s · measured 2.07 s"


PASS = Spec.model_validate(
    {"default_link": {"ingress": {"rate": "20mbit"}, "egress": {"rate": "5mbit"}}}
)


def test_a_reset_reads_0_ms_when_frames_go_straight_through() -> None:
    """After `R y` with traffic flowing, Delay and RTT measured read `-` for 4 s and more: the
    engine measures the frames its links hold, and a link with no delay holds none."""

    async def steps(app: ShaperApp, pilot: Pilot[Any], feed: Feed) -> None:
        await feed.run(pilot, 6.0, ingress={"p50": 41.4, "p99": 61.0})
        app.post_message(SpecArrived(PASS, "set"))
        await pilot.pause()
        none = {"measured": False}
        await feed.run(pilot, 1.5, ingress=none, egress=none)

    app = scenario(steps)
    delay = str(app.panels["ingress"].sparks["delay"].figure.render()).strip()
    assert delay == "0/0 ms", delay
    assert text(app.panels["ingress"].rtt) == "RTT set 0 ms · measured 0 ms"


def test_the_lost_share_right_after_loss_is_set_to_0_is_not_the_old_one() -> None:
    """After a replay's step set the loss to 0 %, `Lost 4.6%` stood beside the 0 % control."""

    async def steps(app: ShaperApp, pilot: Pilot[Any], feed: Feed) -> None:
        await feed.run(pilot, 6.0, ingress={"loss": 0.05})
        lost = app.panels["ingress"].sparks["lost"]
        assert str(lost.figure.render()).strip().startswith("5%")
        app.post_message(SpecArrived(PASS, "replay"))
        await pilot.pause()
        await feed.run(pilot, 0.6)  # a figure drawn (twice a second) within the second
        shown = str(lost.figure.render()).strip()
        assert "%" not in shown, shown

    scenario(steps)


def test_a_count_a_second_reads_in_one_style() -> None:
    """`100% 1.0/s` beside `13/s`: 0.99 a second rounds to `1/s`, as 13 reads `13/s`."""
    assert [rate_figure(n) for n in (0.99, 0.96, 13.0, 0.4, 0.0)] == [
        "1/s", "1/s", "13/s", "0.4/s", "0/s"
    ]  # fmt: skip


def test_a_delay_pair_across_a_second_keeps_both_units_in_its_columns() -> None:
    """Second new-user pass: after a 10 s block, Delay read `0.0623/20.1` (62.3 ms and 20.1 s,
    its ` s` cut off by the figure's 12 columns)."""
    assert delay_pair(62.3, 20_100.0) == "62.3ms/20.1s"
    assert len(delay_pair(999.0, 99_900.0)) <= 12
    assert delay_pair(11_800.0, 11_800.0) == "11.8/11.8 s"
    assert delay_pair(81.2, 98.2) == "81.2/98.2 ms"
