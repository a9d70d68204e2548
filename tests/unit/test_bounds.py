"""Bounds of the pure core, in virtual time: what a link holds for delay, flushing, frames that
claim an absurd segment size, and the cost of idle flow links; the classifier's index against
the plain first-match scan it replaces."""

from __future__ import annotations

import ipaddress
import random

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from engine.core import frames as frames_module
from engine.core import pipeline as pipeline_module
from engine.core.classifier import DEFAULT_LABEL, Classifier
from engine.core.delay_line import PACKET_OVERHEAD, Released
from engine.core.frames import GSO_TCPV4, VNET_F_NEEDS_CSUM, FlowKey, VnetHeader
from engine.core.link import Link
from engine.core.pipeline import DirectionPipeline
from engine.model.spec import FlowSpec, Spec, parse_spec
from engine.model.stats import LinkStats
from tests.frames_helpers import CLIENT, SERVER, udp_frame


def pipeline(spec: dict[str, object], direction: str = "egress") -> DirectionPipeline:
    return DirectionPipeline(parse_spec(spec), direction, 0.0, seed=1)  # type: ignore[arg-type]


def test_what_a_link_holds_for_delay_is_bounded_and_the_rest_counted() -> None:
    """The bug: an hour of latency set by mistake held every packet (85,688 in 5 s, RSS 39 ->
    182 MB). Now `queue.held_bytes` caps it and the excess is dropped as `held_full`."""
    frame = udp_frame(size=1000)
    limit = 100 * (len(frame) + PACKET_OVERHEAD)
    p = pipeline({"egress": {"latency": "3600s", "queue": {"held_bytes": limit}}})
    for i in range(1000):
        p.forward(frame, i * 0.001)
    total = p.stats(1.0).total
    assert total.in_flight == 100
    assert total.held_bytes == limit
    assert total.drops.held_full == 900
    assert total.packets_in == 1000


def test_the_direction_as_a_whole_is_bounded_across_flow_links() -> None:
    flows = [
        {"label": f"f{i}", "flow": {"ip": f"198.18.1.{i}"}, "link": {"egress": {"latency": 1e6}}}
        for i in range(1, 5)
    ]
    p = pipeline({"flows": flows})
    p._budget.limit = 10_000  # the budget object is shared by all links of the direction
    frame_size = len(udp_frame(dst="198.18.1.1", size=1000)) + PACKET_OVERHEAD
    for i in range(40):
        p.forward(udp_frame(dst=f"198.18.1.{i % 4 + 1}", size=1000), 0.0)
    total = p.stats(0.0).total
    assert total.held_bytes == (10_000 // frame_size) * frame_size
    assert total.drops.held_full == 40 - 10_000 // frame_size


def test_flush_drops_what_is_held_and_the_link_goes_on() -> None:
    p = pipeline({"egress": {"latency": "3600s", "rate": "1mbit"}})
    for i in range(50):
        p.forward(udp_frame(size=1000), i * 0.0001)
    assert not p.idle
    assert p.flush() == 50
    assert p.idle and p.next_deadline() is None
    stats = p.stats(1.0).total
    assert stats.drops.flushed == 50 and stats.queue_packets == 0 and stats.held_bytes == 0
    # A lower latency afterwards applies to what comes next.
    p.configure(parse_spec({"egress": {"latency": 5}}), 1.0)
    p.forward(udp_frame(), 1.0)
    assert p.release(1.0049) == [] and len(p.release(1.0051)) == 1


def test_flush_of_one_link_leaves_the_others() -> None:
    flows = [{"label": "slow", "flow": {"ip": "198.18.1.1"}, "link": {"egress": {"latency": 1e6}}}]
    p = pipeline({"default_link": {"egress": {"latency": 1e6}}, "flows": flows})
    p.forward(udp_frame(dst="198.18.1.1"), 0.0)
    p.forward(udp_frame(), 0.0)
    assert p.flush("slow") == 1
    assert p.stats(0.0).flows["default"].in_flight == 1


def _claimed_segment_size(gso_size: int) -> bytes:
    """A 60 KB TCP super-frame whose vnet header claims segments of `gso_size` bytes."""
    raw = bytes(Ether() / IP(src=CLIENT, dst=SERVER) / TCP() / (b"z" * 60_000))
    return VnetHeader(VNET_F_NEEDS_CSUM, GSO_TCPV4, 54, gso_size, 34, 16).pack() + raw


def test_a_super_frame_with_an_absurd_segment_size_is_refused_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug: `gso_size=1` made the shaped path cut 60 KB into 60,000 segments in Python
    (ping max 379 ms). Now it is counted as malformed and dropped whole, never cut up."""
    pieces: list[int] = []
    cut = frames_module.segment

    def counted(frame: bytes) -> list[bytes]:
        out = cut(frame)
        pieces.append(len(out))
        return out

    monkeypatch.setattr(pipeline_module, "segment", counted)
    p = pipeline({"egress": {"loss": 0.01}})
    assert p.forward(_claimed_segment_size(1), 0.0) is False
    assert pieces == []
    stats = p.stats(0.0).total
    assert stats.drops.malformed == 1 and stats.packets_in == 1 and p.idle
    # A real one is still cut up, wire packet by wire packet.
    p.forward(_claimed_segment_size(1448), 0.0)
    assert pieces == [42]
    assert p.stats(0.0).total.packets_in == 1 + 42


def _linear_reference(flows: list[FlowSpec], key: FlowKey, ingress: bool) -> str:
    """The first-match rule as the seed states it, one rule after another."""
    address = key.src if ingress else key.dst
    port = key.sport if ingress else key.dport
    for flow in flows:
        network = flow.flow.network
        if network is not None and (
            network.version != key.version or ipaddress.ip_address(address) not in network
        ):
            continue
        protocol = flow.flow.protocol_number
        if protocol:
            if key.protocol != protocol:
                continue
            if protocol in (6, 17) and not flow.flow.port_min <= port <= flow.flow.port_max:
                continue
        return flow.label
    return DEFAULT_LABEL


def test_the_index_answers_as_the_first_match_scan_does() -> None:
    rng = random.Random(7)
    for _round in range(30):
        flows: list[FlowSpec] = []
        for i in range(rng.randint(1, 40)):
            kind = rng.random()
            if kind < 0.2:
                ip: object = 0
            elif kind < 0.7:
                ip = f"198.18.{rng.randint(0, 3)}.{rng.randint(0, 7)}/{rng.choice([24, 30, 32])}"
            elif kind < 0.85:
                ip = f"2001:db8::{rng.randint(0, 7):x}/{rng.choice([64, 126, 128])}"
            else:
                ip = f"198.18.0.0/{rng.choice([15, 16, 22])}"
            protocol = rng.choice([0, 0, 6, 17, 1])
            low = rng.randint(0, 20)
            flows.append(
                FlowSpec.model_validate(
                    {
                        "label": f"f{i}",
                        "flow": {
                            "ip": ip,
                            "protocol": protocol,
                            "port_min": low,
                            "port_max": low + rng.randint(0, 10),
                        },
                    }
                )
            )
        Spec(flows=flows)  # a valid spec
        for ingress in (True, False):
            classifier = Classifier.of_flows(flows, "ingress" if ingress else "egress")
            for _ in range(300):
                if rng.random() < 0.7:
                    version = 4
                    far = int(
                        ipaddress.ip_address(f"198.18.{rng.randint(0, 4)}.{rng.randint(0, 9)}")
                    )
                else:
                    version = 6
                    far = int(ipaddress.ip_address(f"2001:db8::{rng.randint(0, 9):x}"))
                near = int(ipaddress.ip_address("198.18.9.9" if version == 4 else "2001:db8::99"))
                protocol = rng.choice([6, 17, 1, 58])
                port = rng.randint(0, 35)
                key = (
                    FlowKey(version, far, near, protocol, port, 1)
                    if ingress
                    else FlowKey(version, near, far, protocol, 1, port)
                )
                for _twice in range(2):  # the second answer comes from the cache
                    assert classifier.classify(key) == _linear_reference(flows, key, ingress)


def test_idle_flow_links_are_not_visited_per_frame_nor_rebuilt_per_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug: 500 / 5,000 flow rules cut TCP from 13 to 2.0 / 0.004 Gbit/s: every link was
    looked at for every frame and its stats model built for every report. Now a frame costs
    the links that hold something, and a report builds models only for links that changed.
    (What that buys in throughput is measured by `make bench`, not here.)"""
    flows = [
        {
            "label": f"f{i}",
            "flow": {"ip": f"198.19.{i // 250}.{i % 250}", "protocol": "udp"},
            "link": {"egress": {"latency": 5}},
        }
        for i in range(1000)
    ]
    p = pipeline({"default_link": {"egress": {"latency": 1}}, "flows": flows})
    p.stats(0.0)
    visits: list[Link] = []
    builds: list[Link] = []
    advance, build = Link.advance, Link._build_stats

    def counted_advance(
        self: Link, now: float, out: list[Released], serialise: bool = True
    ) -> None:
        visits.append(self)
        advance(self, now, out, serialise)

    def counted_build(self: Link) -> LinkStats:
        builds.append(self)
        return build(self)

    monkeypatch.setattr(Link, "advance", counted_advance)
    monkeypatch.setattr(Link, "_build_stats", counted_build)
    frames = [udp_frame(dst=f"198.18.0.{i % 50 + 1}") for i in range(50)]
    frames.append(udp_frame(dst="198.19.0.7"))  # one for a flow link
    for i, frame in enumerate(frames * 20):
        now = i * 0.0001
        p.forward(frame, now)
        p.release(now)
    releases = len(frames) * 20
    assert len(visits) <= 2 * releases  # the default link and the one flow link, at most
    assert {id(link) for link in visits} <= {id(p._links["default"]), id(p._links["f7"])}
    p.release(1.0)
    assert p.idle
    p.stats(1.0)
    assert len(builds) == 2  # of 1,001 links, the two that changed
    assert p.stats(1.0).total.packets_in == releases
    builds.clear()
    p.stats(1.1)
    assert builds == []


def test_totals_kept_by_differences_match_counting_everything() -> None:
    """The direction's totals are kept up to date from the links that changed; they must equal
    what counting every frame gives, across flows added, removed (drained) and flushed."""
    rng = random.Random(5)

    def spec_with(labels: list[int]) -> Spec:
        return parse_spec(
            {
                "default_link": {"egress": {"latency": 1, "loss": 0.1}},
                "flows": [
                    {"label": f"f{i}", "flow": {"ip": f"198.18.1.{i}"},
                     "link": {"egress": {"latency": i, "rate": "5mbit"}}}
                    for i in labels
                ],
            }
        )  # fmt: skip

    p = DirectionPipeline(spec_with([1, 2, 3]), "egress", 0.0, seed=2)
    offered = released = 0
    now = 0.0
    for step in range(400):
        now += 0.001
        far = rng.randint(1, 6)
        p.forward(udp_frame(dst=f"198.18.1.{far}", size=rng.randint(10, 1200)), now)
        offered += 1
        released += len(p.release(now))
        if step % 50 == 49:
            p.configure(spec_with(rng.sample(range(1, 7), 3)), now)
        if step % 97 == 0:
            p.flush(f"f{rng.randint(1, 6)}")
        if step % 7 == 0:
            changed = p.stats(now, changed_only=True)
            assert set(changed.flows) <= {"default", *(f.label for f in p.spec.flows)}
    released += len(p.release(now + 10))
    total = p.stats(now + 10).total
    drops = total.drops
    assert total.packets_in == offered
    assert total.packets_out == released
    assert total.packets_in == total.packets_out + drops.total
    assert total.in_flight == 0 and total.queue_packets == 0 and total.held_bytes == 0
    # Nothing changed since: a report of the changed links is empty, the totals the same.
    again = p.stats(now + 11, changed_only=True)
    assert again.flows == {} and again.total == total
