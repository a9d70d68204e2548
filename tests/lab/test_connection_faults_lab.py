"""Connection faults in the lab, with real packets: a UDP stream through a `blackhole` after
2 s stops at 2 s, and a connection that started later is left alone until its own 2 s."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import pytest

from engine.lab.harness import Background, EngineProcess, probe
from engine.lab.lab import SERVER_IP, Lab
from tests.wait_helpers import wait_udp_bound

pytestmark = pytest.mark.lab

#: How far the stream's last delivered datagram may be sent from 2 s after its first: the
#: engine's clock is the arrival stamp, the sender's the wall clock, on a busy 2-core host.
TOLERANCE_S = 0.25


def test_a_udp_stream_through_a_blackhole_after_2_s_stops_at_2_s_and_others_go_on(
    lab: Lab, start_engine: Callable[..., EngineProcess], background: Background
) -> None:
    start_engine({"default_link": {"egress": {"blackhole": {"after_s": 2}}}})
    receivers: list[subprocess.Popen[str]] = []
    for port in (6000, 6001):
        receivers.append(background.start(probe(lab, "server", "recv", str(port), "--idle",
                                                "2", "--each")))  # fmt: skip
        wait_udp_bound(lab, "server", port)
    stream = background.start(probe(lab, "client", "send", SERVER_IP, "6000", "--count", "400",
                                    "--pps", "100"))  # fmt: skip
    time.sleep(2.5)  # the stream is blackholed by now; a new connection starts
    subprocess.run(probe(lab, "client", "send", SERVER_IP, "6001", "--count", "100", "--pps",
                         "100"), check=True, timeout=30)  # fmt: skip
    stream.communicate(timeout=30)
    results = [json.loads(r.communicate(timeout=60)[0]) for r in receivers]
    sent = {int(k): v for k, v in results[0]["each_sent"].items()}
    assert 0 in sent, results[0]["received"]
    lasted = max(sent.values()) - sent[0]
    assert abs(lasted - 2.0) <= TOLERANCE_S, lasted
    assert results[0]["received"] < 260  # of 400 sent over 4 s: nothing after 2 s
    assert results[1]["received"] == 100  # the later connection: its 1 s whole
