"""The demo's traffic after an extreme setting (issue 35, item 12): TCP backs off while every
packet is lost (each retry waits twice as long), so with sane values back the demo's flows
stood at 0 pkt/s for a minute or more. The demo sees the stand-still and starts its flows
again: real iperf3 flows, a real engine, in a lab of this run's own prefix."""

from __future__ import annotations

import os
import time

import pytest

from engine.lab.demo import DemoLab
from engine.lab.lab import Lab
from engine.model.rates import direction_rates
from engine.model.spec import DIRECTIONS
from engine.model.stats import DirectionStats
from engine.protocol.client import ControlClient
from tests.conftest import lab_prerequisites

pytestmark = pytest.mark.lab

#: Packets a second in each direction that count as the demo's flows moving (at 20 and
#: 5 Mbit/s they carry hundreds; a backed-off TCP sends one retry every few seconds).
MOVING = 100.0
#: Long enough that TCP's retries are many seconds apart: after 40 s of it the flows here
#: stood still for 54 s once the loss ended (0.2 s doubled 8 times is 51 s).
LOST_FOR = 40.0
#: The demo restarts flows STALL_RESTART (2 s) after it sees them stand still, polling once a
#: second; new connections carry traffic within a second or two: 8 s leaves room on a busy
#: machine, and is well short of a backed-off retry.
RESUMED_WITHIN = 8.0


def moving(client: ControlClient, last: dict[str, DirectionStats]) -> bool:
    """Whether both directions carried MOVING packets a second since the last call."""
    stats = client.stats()
    flowing = True
    for direction in DIRECTIONS:
        current = stats.ingress if direction == "ingress" else stats.egress
        assert current is not None
        rates = direction_rates(last.get(direction), current)
        flowing = flowing and direction in last and rates.packets_in >= MOVING
        last[direction] = current
    return flowing


def wait_moving(client: ControlClient, seconds: float) -> float | None:
    """Seconds until both directions move, None if not within `seconds`."""
    start = time.monotonic()
    last: dict[str, DirectionStats] = {}
    while time.monotonic() - start < seconds:
        time.sleep(0.5)
        if moving(client, last):
            return time.monotonic() - start
    return None


def test_the_demo_restarts_its_flows_after_total_loss_ends() -> None:
    reason = lab_prerequisites()
    if reason:
        pytest.skip(reason)
    with (
        DemoLab(Lab(f"lsd{os.getpid() % 100000}"), seconds=120) as demo,
        ControlClient(demo.control) as client,
    ):
        assert wait_moving(client, 15.0) is not None, "the demo's flows never started"
        client.patch({"ingress.loss": "100%", "egress.loss": "100%"}, source="test")
        time.sleep(LOST_FOR)
        assert demo.restarts == 0  # nothing to restart while the link itself drops all
        client.patch({"ingress.loss": "0", "egress.loss": "0"}, source="test")
        took = wait_moving(client, RESUMED_WITHIN)
        assert took is not None, f"no traffic {RESUMED_WITHIN} s after the loss ended"
        assert demo.restarts == 1
