"""The seed's five-argument `run` in the lab (root): both profiles kept and served. The usage
check is in tests/unit/test_seed_profiles.py."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.lab.harness import Background, EngineProcess, probe
from engine.lab.lab import SERVER_IP, Lab
from engine.model import flowtop
from tests.netns_thread import in_netns
from tests.unit.test_seed_profiles import client_flows
from tests.wait_helpers import wait_udp_bound

StartEngine = Callable[..., EngineProcess]


PORT = 8093


#: Packets sent to each of the server's ports; the profile must count them within 2 %.
SENT = {5001: 300, 5002: 600}


@pytest.mark.lab
def test_five_arguments_keep_both_profiles_and_the_api_serves_them(
    start_engine: StartEngine, lab: Lab, tmp_path: Path
) -> None:
    ingress, egress = tmp_path / "ingress.profile", tmp_path / "egress.profile"
    engine = start_engine(
        {"ingress": {}, "egress": {}},
        extra=("--http", f"127.0.0.1:{PORT}"),
        profiles=(str(ingress), str(egress)),
    )
    assert ingress.stat().st_size == egress.stat().st_size == flowtop.SIZE  # there at once
    for port, count in SENT.items():
        send = ("send", SERVER_IP, str(port), "--count", str(count), "--pps", "500")
        subprocess.run(probe(lab, "client", *send, "--size", "100"), check=True, timeout=60)

    def counted() -> dict[tuple[str, int, int], tuple[int, int]]:
        return client_flows(egress.read_bytes())

    deadline = time.monotonic() + 10
    while counted().get((SERVER_IP, 17, 5002), (0, 0))[0] < SENT[5002] * 0.98:
        assert time.monotonic() < deadline, counted()
        time.sleep(0.2)
    flows = counted()
    for port, count in SENT.items():
        packets, bits = flows[(SERVER_IP, 17, port)]
        assert abs(packets - count) <= count * 0.02, (port, packets)
        # 100 bytes of payload, UDP, IPv4, Ethernet; preamble, gap and CRC on the wire.
        assert bits == packets * (100 + 8 + 20 + 14 + 24) * 8
    served = in_netns(
        lab.ns("box"),
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{PORT}/top/egress.profile").read(),
    )
    assert client_flows(served)[(SERVER_IP, 17, 5001)][0] >= SENT[5001] * 0.98
    assert len(engine.stderr()) < 10_000


#: Datagrams through 20 % loss for the profile's count of what left (issue 36, item 5).
LOSSY_SENT = 2000
LOSSY_PORT = 5003


@pytest.mark.lab
def test_a_profile_counts_what_left_a_lossy_link(
    start_engine: StartEngine, lab: Lab, background: Background
) -> None:
    """The seed counts a profile after its links: through 20 % loss, the profile holds the
    datagrams that left (about 80 % of those sent), not all that arrived. Tolerance: 5 sd of
    the binomial count (18 datagrams of 2000), and the server's count within 1 % (what the
    host itself may drop on the way)."""
    start_engine({"ingress": {}, "egress": {"loss": 0.2}}, extra=("--http", f"127.0.0.1:{PORT}"))
    receiver = background.start(probe(lab, "server", "recv", str(LOSSY_PORT), "--idle", "1.5"))
    wait_udp_bound(lab, "server", LOSSY_PORT)
    send = ("send", SERVER_IP, str(LOSSY_PORT), "--count", str(LOSSY_SENT), "--pps", "1000")
    subprocess.run(probe(lab, "client", *send, "--size", "100"), check=True, timeout=60)
    received = json.loads(receiver.communicate(timeout=40)[0])["received"]

    def counted() -> tuple[int, int]:
        served = in_netns(
            lab.ns("box"),
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{PORT}/top/egress.profile").read(),
        )
        return client_flows(served).get((SERVER_IP, 17, LOSSY_PORT), (0, 0))

    deadline = time.monotonic() + 10  # the profile is taken once a second: until it settles
    last = (-1, -1)
    while (now := counted()) != last or now[0] == 0:
        assert time.monotonic() < deadline, now
        last = now
        time.sleep(1.2)
    packets, bits = now
    sd = (LOSSY_SENT * 0.8 * 0.2) ** 0.5
    assert abs(packets - 0.8 * LOSSY_SENT) <= 5 * sd, packets
    assert abs(packets - received) <= 0.01 * LOSSY_SENT, (packets, received)
    assert bits == packets * (100 + 8 + 20 + 14 + 24) * 8
