"""New-user report 35b, items 3, 8 and 9: figures beside the controls in one unit with them,
true right after a change, with their units. Fed the engine's messages as in
test_set_beside_did.py."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from engine.model.spec import Spec
from shaper_tui.app import ShaperApp
from shaper_tui.messages import SpecArrived
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
