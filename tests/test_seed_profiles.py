"""The seed's traffic profiles ("flowtop") and its command line: the five-argument `run`
keeps both profile files in the seed's layout, the HTTP API serves them, and decoded the way
the seed's client decodes them they count the packets the test sent, flow by flow. A wrong
number of arguments gets the seed's usage on stdout, whose example its setup script takes."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.lab.harness import EngineProcess, probe
from engine.lab.lab import SERVER_IP, Lab
from engine.model import flowtop
from engine.model.spec import parse_spec
from tests import ROOT
from tests.netns_thread import in_netns

StartEngine = Callable[..., EngineProcess]
PORT = 8093
#: Packets sent to each of the server's ports; the profile must count them within 2 %.
SENT = {5001: 300, 5002: 600}


def client_flows(data: bytes) -> dict[tuple[str, int, int], tuple[int, int]]:
    """What the seed client's `Profile._parse` makes of a profile: per (ip, protocol, port),
    packets and bits, from 2048 slots of three little-endian 64-bit words."""
    assert len(data) == 2048 * 24
    flows: dict[tuple[str, int, int], tuple[int, int]] = {}
    for i in range(2048):
        packets, bits, ident = struct.unpack_from("<qqq", data, i * 24)
        if packets > 0:
            ip = ident & 0xFFFFFFFF
            address = ".".join(str(b) for b in ip.to_bytes(4, "little"))
            flows[(address, (ident >> 32) & 0xFF, (ident >> 48) & 0xFFFF)] = (packets, bits)
    return flows


def test_a_profile_is_the_seeds_layout() -> None:
    data = flowtop.profile([(4, 0xC6120002, 17, 5001, 10, 8000), (6, 1, 17, 53, 2, 900)])
    flows = client_flows(data)
    assert flows == {("198.18.0.2", 17, 5001): (10, 8000), ("0.0.0.0", 0, 0): (2, 900)}


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


def test_a_wrong_argument_count_prints_the_seeds_usage_on_stdout() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "run", "a", "b", "c", "d"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 1 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "Invalid number of arguments." and lines[1].startswith("Usage: ")
    example = next(line for line in lines if "Example config" in line).split()[4]  # awk $5
    spec = parse_spec(json.loads(example))
    assert spec.default_link.ingress.rate == 10_000_000 and spec.flows[0].label == "http"
