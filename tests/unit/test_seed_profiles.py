"""The seed's traffic profiles ("flowtop") and its command line: the five-argument `run`
keeps both profile files in the seed's layout, the HTTP API serves them, and decoded the way
the seed's client decodes them they count the packets the test sent, flow by flow. A wrong
number of arguments gets the seed's usage on stdout, whose example its setup script takes."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

from engine.model import flowtop
from engine.model.spec import parse_spec
from tests import ROOT


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


def test_a_profile_counts_what_left_the_link_every_frame() -> None:
    """Issue 36, item 5: profiles counted frames as they arrived (before loss), sampled beyond
    a thousand a stats window; the seed counts every frame that left. Through 20 % loss, in
    virtual time, the profile's packets and bits are exactly those the link sent on."""
    from engine.core.pipeline import DirectionPipeline
    from engine.model.spec import loads_spec
    from tests.frames_helpers import udp_frame

    spec = loads_spec(json.dumps({"egress": {"loss": 0.2, "latency": "5ms"}}))
    p = DirectionPipeline(spec, "egress", 0.0, seed=5)
    frame = udp_frame(size=100)
    left = 0
    for n in range(5000):
        p.forward(frame, n / 1000)
        left += len(p.release(n / 1000))
    left += len(p.release(10.0))
    flows = client_flows(flowtop.profile(p.far_ends()))
    packets, bits = flows[("198.18.0.2", 17, 5001)]
    assert packets == left == p.stats(10.0).total.packets_out
    assert 0.77 * 5000 < packets < 0.83 * 5000  # 20 % lost: 4000 +- 5 sd of 28
    assert bits == packets * (100 + 8 + 20 + 14 + 24) * 8


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
