"""Copy this file into your tests: `shaped_link` comes with linkshaper (run pytest as root).

Each test gets a client and a server network namespace with a linkshaper engine between them;
run your own client and server there instead of ping (`shaped_link.popen("server", ...)`,
`shaped_link.run("client", ...)`).
"""

import statistics

import pytest


@pytest.mark.parametrize(
    ("shaped_link", "rtt_ms"), [("WPT LTE", 70), ("sitespeed cable", 14)], indirect=["shaped_link"]
)
def test_round_trips_take_at_least_the_presets_rtt(shaped_link, rtt_ms):
    rtts = shaped_link.ping(count=5)
    assert len(rtts) == 5 and min(rtts) >= rtt_ms


def test_latency_changed_mid_test(shaped_link):
    assert statistics.median(shaped_link.ping(count=5)) < 20  # pass-through at first
    shaped_link.set(latency="40ms")  # both directions: an 80 ms round trip
    assert min(shaped_link.ping(count=5)) >= 80
    assert shaped_link.stats().egress.total.packets_out >= 10
