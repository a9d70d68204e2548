"""The connection faults that hold packets, in virtual time: `slow_close` holds a TCP FIN (and
what follows it on its connection) T ms; `stall` holds a connection's packets once, T ms from a
random point within its window, then releases them in order; other connections pass; both are
marked `held` in a capture and counted; bad settings are refused in one line."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from engine.captures.pcapng import marks_comment
from engine.core.fates import FateLog
from engine.core.hold_faults import tcp_fin
from engine.core.link import Link
from engine.core.packet import Packet
from engine.core.pipeline import DirectionPipeline
from engine.model.fates import FORWARDED, HELD, FateRecord, corrupted_bit
from engine.model.spec import LinkSpec, SpecError, loads_spec, parse_spec
from engine.model.spec_patch import patch_spec
from shaper_tui.packet_feed import SeenFrame
from shaper_tui.screens.packets import FATES, fate_of, passes
from tests.frames_helpers import udp_frame, with_vnet
from tests.impairment_helpers import binomial_bounds, datagram, link, simulate, steady, tag_of

LATENCY = 0.010


def segment(
    flags: str, sport: int = 40000, tag: int = 0, v6: bool = False, dport: int = 80
) -> bytes:
    """A TCP segment of the connection from `sport`, its payload's last four bytes `tag`."""
    ip: Any = IPv6(src="2001:2::1", dst="2001:2::2") if v6 else IP(src="198.18.0.1",
                                                                    dst="198.18.0.2")  # fmt: skip
    payload = bytes(16) + tag.to_bytes(4, "big")
    return with_vnet(Ether() / ip / TCP(sport=sport, dport=dport, flags=flags) / payload)


def test_only_a_fin_is_read_as_one() -> None:
    assert tcp_fin(segment("FA")) and tcp_fin(segment("F", v6=True))
    assert not tcp_fin(segment("A")) and not tcp_fin(segment("S"))
    assert not tcp_fin(udp_frame()) and not tcp_fin(b"\x00" * 30)


def test_slow_close_holds_the_fin_and_what_follows_it_and_no_other_connection() -> None:
    lnk = link(latency=LATENCY * 1000, slow_close={"delay_ms": 500})
    lnk.fates = FateLog()
    arrivals = [(i / 100, segment("A", tag=i)) for i in range(10)]
    arrivals += [(0.10, segment("FA", tag=10)), (0.15, segment("A", tag=11))]
    arrivals += [(0.12, segment("A", sport=40001, tag=99))]  # another connection
    released = {tag_of(frame): at for at, frame in simulate(lnk, arrivals, 2.0)}
    assert all(released[i] - i / 100 == pytest.approx(LATENCY) for i in range(10))
    assert released[10] >= 0.10 + LATENCY + 0.5  # a delay is a floor
    assert released[10] == pytest.approx(0.10 + LATENCY + 0.5)
    assert released[11] >= released[10]  # behind the FIN: its connection's order is kept
    assert released[99] == pytest.approx(0.12 + LATENCY)
    assert lnk.stats().held == 2
    records, _ = lnk.fates.take()
    held = [r for r in records if r.marks & HELD]
    assert len(held) == 2 and all(r.fate == FORWARDED for r in held)
    fin, follower = sorted(held, key=lambda r: r.arrival)
    assert (
        fin.delay >= 0.5 + LATENCY and fin.arrival + fin.delay <= follower.arrival + follower.delay
    )
    assert corrupted_bit(fin.marks) is None
    assert marks_comment(held[0]) == "impaired: held"


def stalled(released: list[tuple[float, bytes]], latency: float = LATENCY) -> list[int]:
    """The tags of the frames (tag n sent at n / 100 s) that took longer than the latency."""
    return [
        tag_of(frame) for at, frame in released if at - tag_of(frame) % 1000 / 100 > latency + 1e-3
    ]


@pytest.mark.parametrize("window", [{"within_s": 2}, {"within_bytes": 200 * 150}])
def test_a_stall_holds_a_stream_once_then_releases_it_in_order(window: dict[str, int]) -> None:
    lnk = link(latency=LATENCY * 1000, stall={"delay_ms": 800, **window})
    stream = steady(100, 0.0, 5.0, datagram(sport=40000, l2=150))
    other = steady(100, 0.0, 5.0, datagram(sport=40001, l2=150), first_tag=1000)
    released = simulate(lnk, stream + other, 8.0)
    mine = [(at, frame) for at, frame in released if tag_of(frame) < 1000]
    tags = [tag_of(frame) for _, frame in mine]
    assert tags == sorted(tags) and len(tags) == 500  # in order, none lost
    held = stalled(mine)
    assert held == list(range(held[0], held[0] + 80))  # once, T's worth of the stream
    assert held[0] <= 200  # within the window (2 s, or 200 frames' bytes)
    first = next(at for at, frame in mine if tag_of(frame) == held[0])
    assert first - held[0] / 100 == pytest.approx(0.8 + LATENCY)  # the first held, T
    # the other connection stalls once too, at its own point: 80 held each
    assert lnk.stats().held == len(stalled(released)) == 160


def test_a_seeded_stall_falls_at_the_same_point_on_every_run() -> None:
    spec: dict[str, Any] = {"stall": {"delay_ms": 300, "within_s": 3}, "seed": 7}
    stream = steady(100, 0.0, 4.0, datagram(sport=40000))
    runs = (Link(LinkSpec.model_validate(spec), random.Random(s), 0.0) for s in (1, 2, 3))
    points = {stalled(simulate(lnk, stream, 6.0), 0.0)[0] for lnk in runs}
    assert len(points) == 1
    unseeded = {stalled(simulate(link(seed=s, stall=spec["stall"]), stream, 6.0), 0.0)[0]
                for s in range(1, 6)}  # fmt: skip
    assert len(unseeded) > 1  # the link's Random: a point of its own each run


@pytest.mark.parametrize("fault", ["slow_close", "stall"])
def test_toxicity_half_takes_half_of_200_connections(fault: str) -> None:
    settings: dict[str, Any] = {"delay_ms": 100, "toxicity": 0.5}
    if fault == "stall":
        settings["within_bytes"] = 1
    fields: dict[str, Any] = {fault: settings}
    lnk = link(**fields)
    arrivals = [(i / 1000, segment("A", sport=20000 + i)) for i in range(200)]
    arrivals += [(0.5 + i / 1000, segment("FA", sport=20000 + i)) for i in range(200)]
    simulate(lnk, arrivals, 2.0)
    low, high = binomial_bounds(200, 0.5)  # 100 +- 23
    assert low <= lnk.stats().held <= high


def test_a_fault_set_live_takes_the_connections_already_seen() -> None:
    spec = loads_spec(json.dumps({"egress": {"latency": 10}}))
    egress = DirectionPipeline(spec, "egress", 0.0, seed=1)
    egress.forward(segment("A"), 0.0)
    held = loads_spec(json.dumps({"egress": {"latency": 10, "slow_close": {"delay_ms": 400}}}))
    egress.configure(held, 0.5)
    egress.forward(segment("FA"), 1.0)
    assert egress.stats(2.0).total.held == 1


@pytest.mark.parametrize(
    ("fault", "value", "words"),
    [
        ("slow_close", {}, "delay_ms"),
        ("slow_close", {"delay_ms": -1}, "delay_ms"),
        ("slow_close", {"delay_ms": 10, "toxicity": 2}, "toxicity"),
        ("stall", {"delay_ms": 10}, "give within_bytes or within_s"),
        ("stall", {"delay_ms": 10, "within_s": -1}, "within_s"),
        ("stall", {"delay_ms": 10, "within_bytes": 0}, "within_bytes"),
        ("stall", {"delay_ms": 10, "within_s": 1, "after": 2}, "after"),
    ],
)
def test_a_bad_hold_fault_is_refused_in_one_line_naming_the_field(
    fault: str, value: dict[str, object], words: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"default_link": {"ingress": {fault: value}}})
    message = str(caught.value)
    assert "\n" not in message and fault in message and words in message, message


def test_set_by_dotted_paths_as_linkshaper_set_does_and_a_recording_reads_back() -> None:
    spec = patch_spec(parse_spec({}), {"egress.slow_close.delay_ms": "500ms",
                                       "egress.stall.delay_ms": "1s",
                                       "egress.stall.within_s": 2})  # fmt: skip
    egress = spec.default_link.egress
    assert egress.slow_close is not None and egress.slow_close.delay_ms == 500
    assert egress.stall is not None and egress.stall.delay_ms == 1000
    assert parse_spec(json.loads(spec.model_dump_json())) == spec  # as a timeline records it


def test_the_packets_view_tells_a_held_frame_forwarded_with_its_delay_and_picks_it() -> None:
    frame = segment("FA")
    record = FateRecord(1.0, FORWARDED, 0.81, 0.0, "default", len(frame) - 10, frame[10:], HELD)
    seen = SeenFrame("ingress", record, 1)
    assert fate_of(seen).plain == "+810.0 ms held"
    assert "held" in FATES and passes(seen, "both", "held") and passes(seen, "both", "forwarded")
    assert not passes(seen, "both", "dropped")


def test_a_copy_of_a_held_fin_is_held_too() -> None:
    lnk = link(slow_close={"delay_ms": 500}, duplicate=1.0)
    released = simulate(lnk, [(0.0, segment("FA"))], 2.0)
    assert len(released) == 2 and min(at for at, _ in released) >= 0.5
    assert lnk.stats().held == 2 and lnk.stats().duplicated == 1


def test_a_blackhole_set_beside_a_hold_fault_takes_the_connections_already_seen() -> None:
    lnk = link(slow_close={"delay_ms": 100})
    simulate(lnk, [(0.0, segment("A"))], 0.1)
    lnk.configure(LinkSpec.model_validate({"slow_close": {"delay_ms": 100},
                                           "blackhole": {"after_bytes": 0}}), 0.2)  # fmt: skip
    lnk.offer(Packet(segment("A"), 0.3, 1, 100))
    assert lnk.stats().drops.blackholed == 1


def test_a_flows_link_holds_its_own_connections_and_the_default_link_none() -> None:
    flow = {"label": "web", "flow": {"protocol": "tcp", "port_min": 80, "port_max": 80},
            "link": {"egress": {"slow_close": {"delay_ms": 300}}}}  # fmt: skip
    egress = DirectionPipeline(loads_spec(json.dumps({"flows": [flow]})), "egress", 0.0, seed=1)
    web, other = segment("FA"), segment("FA", dport=443)  # the web flow's, the default link's
    assert egress.forward(other, 0.0)  # (the default link is transparent: sent at once)
    assert not egress.forward(web, 0.0)
    assert egress.release(0.29) == []
    assert egress.release(0.3) == [web]
    stats = egress.stats(1.0)
    assert stats.total.held == 1 and stats.flows["web"].held == 1
