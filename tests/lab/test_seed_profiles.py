"""The seed's five-argument `run` in the lab (root): both profiles kept and served. The usage
check is in tests/unit/test_seed_profiles.py."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.lab.harness import EngineProcess, probe
from engine.lab.lab import SERVER_IP, Lab
from engine.model import flowtop
from tests.netns_thread import in_netns
from tests.unit.test_seed_profiles import client_flows

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
