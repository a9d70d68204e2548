"""A whole direction in virtual time: flows pick links, super-frames become wire packets."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption
from scapy.layers.l2 import Dot1Q, Ether

from engine.core.deadlines import not_before
from engine.core.far_ends import EXACT_TALKERS, SETTLE_SAMPLES, TALKER_SAMPLE, StraightTally
from engine.core.frames import (
    GSO_TCPV4,
    HEAD_BYTES,
    VNET_F_NEEDS_CSUM,
    VNET_HDR_LEN,
    VnetHeader,
    wire_shape,
)
from engine.core.packet import HeldRun
from engine.core.pipeline import DirectionPipeline
from engine.model.spec import Spec, loads_spec
from tests.frames_helpers import (
    CLIENT,
    SERVER,
    arp_frame,
    copy_of,
    malformed_frames,
    tcp_frame,
    udp_frame,
    with_vnet,
)
from tests.pipeline_helpers import ReceivingPipeline


def pipeline(spec: Mapping[str, object], direction: str = "egress") -> ReceivingPipeline:
    return ReceivingPipeline(loads_spec(json.dumps(spec)), direction, 0.0, seed=1)  # type: ignore[arg-type]


def counts(p: DirectionPipeline) -> dict[str, int]:
    stats = p.stats(0.0)
    return {label: s.packets_in for label, s in stats.flows.items()}


def test_egress_matches_destination_and_first_flow_wins() -> None:
    p = pipeline(
        {
            "flows": [
                {
                    "label": "udp5001",
                    "flow": {"ip": SERVER, "protocol": 17, "port_min": 5001, "port_max": 5001},
                },
                {"label": "server", "flow": {"ip": "198.18.0.0/24"}},
            ]
        }
    )
    p.receive(udp_frame(dport=5001), 0.0)  # both match: the first wins
    p.receive(udp_frame(dport=5002), 0.0)  # the port is outside: the prefix flow
    p.receive(udp_frame(dst="198.19.0.9"), 0.0)  # neither
    p.receive(arp_frame(), 0.0)  # non-IP: default
    assert counts(p) == {"default": 2, "udp5001": 1, "server": 1}


def test_ingress_matches_source() -> None:
    p = pipeline(
        {
            "flows": [
                {
                    "label": "web",
                    "flow": {"ip": SERVER, "protocol": "tcp", "port_min": 80, "port_max": 80},
                }
            ]
        },
        "ingress",
    )
    p.receive(tcp_frame(src=SERVER, dst=CLIENT, sport=80, dport=40000), 0.0)
    p.receive(tcp_frame(src=CLIENT, dst=SERVER, sport=40000, dport=80), 0.0)
    assert counts(p) == {"default": 1, "web": 1}


def test_seed_integer_address_and_ipv6() -> None:
    seed_int = int.from_bytes(bytes([198, 18, 0, 2]), "little")
    p = pipeline(
        {
            "flows": [
                {"label": "v4", "flow": {"ip": seed_int}},
                {"label": "v6", "flow": {"ip": "2001:2::/64", "protocol": "udp"}},
            ]
        }
    )
    p.receive(udp_frame(), 0.0)
    p.receive(udp_frame(src="2001:2::1", dst="2001:2::2"), 0.0)
    p.receive(udp_frame(src="2001:3::1", dst="2001:3::2"), 0.0)
    assert counts(p) == {"default": 1, "v4": 1, "v6": 1}


def test_flow_links_are_impaired_separately() -> None:
    p = pipeline(
        {
            "default_link": {"egress": {"latency": 0}},
            "flows": [
                {
                    "label": "slow",
                    "flow": {"protocol": "udp", "port_min": 5001, "port_max": 5001},
                    "link": {"egress": {"latency": 40}},
                }
            ],
        }
    )
    p.receive(udp_frame(dport=5001), 0.0)
    p.receive(udp_frame(dport=9), 0.0)
    assert len(p.release(0.001)) == 1
    assert p.next_deadline() is not None and abs(p.next_deadline() - 0.040) < 1e-3  # type: ignore[operator]
    assert len(p.release(0.041)) == 1


def test_removed_flow_drains_instead_of_losing_packets() -> None:
    p = pipeline(
        {
            "flows": [
                {"label": "slow", "flow": {"protocol": "udp"}, "link": {"egress": {"latency": 100}}}
            ]
        }
    )
    for _ in range(5):
        p.receive(udp_frame(), 0.0)
    p.configure(Spec(), 0.01)
    assert p.release(0.05) == []
    assert len(p.release(0.2)) == 5
    assert p.stats(0.2).total.packets_out == 5


def _super_frame(segments: int) -> bytes:
    packet = Ether() / IP(src=CLIENT, dst=SERVER) / TCP() / (b"z" * (1448 * segments))
    raw = bytes(packet)
    return VnetHeader(VNET_F_NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16).pack() + raw


def test_super_frames_are_cut_up_where_each_wire_packet_has_its_own_fate() -> None:
    lossy = pipeline({"egress": {"loss": 0.5}})
    lossy.receive(_super_frame(40), 0.0)
    out = lossy.release(1.0)
    stats = lossy.stats(1.0).total
    assert stats.packets_in == 40
    assert stats.drops.loss + stats.packets_out == 40
    assert 5 < stats.drops.loss < 35  # per wire packet, not all-or-nothing
    assert len(out) == stats.packets_out
    assert all(len(copy_of(frame)) <= 10 + 1514 for frame in out)


def test_super_frames_stay_whole_when_nothing_per_packet_is_set() -> None:
    plain = pipeline({"egress": {"rate": "100mbit", "latency": 5}})
    plain.receive(_super_frame(40), 0.0)
    out = plain.release(1.0)
    assert len(out) == 1
    stats = plain.stats(1.0).total
    assert stats.packets_in == stats.packets_out == 40
    # Serialised as 40 wire packets: 40 * (1514 + 24) bytes at 100 Mbit/s, then 5 ms.
    (frame,) = out
    assert struct.unpack_from("<H", copy_of(frame), 4)[0] == 1448


def test_an_aqm_cuts_super_frames_that_would_hold_its_queue_for_over_a_millisecond() -> None:
    """At 20 Mbit/s a 40-segment super-frame takes 25 ms to serialise: fq_codel gets it as
    wire packets, so a sparse flow waits for one of them at most. At 1 Gbit/s it takes 0.5 ms
    and stays whole (cutting costs half the throughput: bench.aqm_cost)."""
    for rate, pieces in (("20mbit", 40), ("1gbit", 1)):
        p = pipeline({"egress": {"rate": rate, "queue": {"discipline": "fq_codel"}}})
        p.receive(_super_frame(40), 0.0)
        assert len(p.release(1.0)) == pieces, rate
        assert p.stats(1.0).total.packets_out == 40


def test_a_super_frame_that_overflows_the_queue_is_cut_and_tail_dropped_per_packet() -> None:
    p = pipeline({"egress": {"rate": "1mbit", "queue": {"packets": 10, "ms": None}}})
    p.receive(_super_frame(4), 0.0)  # empty queue: admitted whole
    p.receive(_super_frame(40), 0.0)  # 6 wire packets fit behind it; 34 do not
    stats = p.stats(0.0).total
    assert stats.queue_packets == 10
    assert stats.drops.queue_full == 34


def test_a_transparent_link_forwards_at_once_and_counts_what_passed() -> None:
    p = pipeline({})
    frame = bytearray(udp_frame())
    view = memoryview(frame)
    assert p.forward(view, 0.0) is True  # the caller sends the view itself: no copy taken
    assert p.idle and p.release(0.0) == []
    total = p.stats(0.0).total
    assert (total.packets_in, total.packets_out) == (1, 1)
    assert total.bytes_in == total.bytes_out == len(frame) - 10
    assert p.stats(0.0).top_talkers[0].packets == 1


def test_an_impaired_link_keeps_a_copy_and_releases_it_on_time() -> None:
    p = pipeline({"egress": {"latency": 5}})
    frame = bytearray(udp_frame())
    assert p.forward(memoryview(frame), 0.0) is False
    original = bytes(frame)
    frame[:] = bytes(len(frame))  # the caller reuses its buffer for the next frame
    assert not p.idle and p.release(0.004) == []
    assert p.release(0.005) == [original]


def test_no_frame_overtakes_what_a_link_still_holds() -> None:
    p = pipeline({"egress": {"latency": 5}})
    first, second = udp_frame(sport=1), udp_frame(sport=2)
    assert p.forward(first, 0.0) is False
    assert p.release(0.0) == []  # serialised at once, now in flight for 5 ms
    p.configure(Spec(), 0.001)  # back to pass-through while the first is in flight
    assert p.forward(second, 0.002) is False  # so the second waits its turn behind it
    assert p.release(0.002) == []
    assert p.release(0.005) == [first, second]
    assert p.forward(udp_frame(sport=3), 0.006) is True  # empty again: straight through


def test_a_pipeline_is_transparent_only_if_every_link_is() -> None:
    assert pipeline({}).transparent
    assert not pipeline({"egress": {"latency": 1}}).transparent
    assert not pipeline({"egress": {"rate": "1gbit"}}).transparent
    flows: dict[str, object] = {
        "flows": [{"label": "slow", "flow": {"ip": SERVER}, "link": {"egress": {"loss": 0.1}}}]
    }
    assert not pipeline(flows).transparent
    assert pipeline(flows, "ingress").transparent  # that flow impairs only the other direction


def test_a_super_frame_on_the_straight_path_counts_as_its_wire_packets() -> None:
    p = pipeline({})
    assert p.forward(_super_frame(40), 0.0) is True
    total = p.stats(0.0).total
    assert total.packets_in == total.packets_out == 40
    assert total.bytes_out == 40 * (54 + 1448)  # each segment with its own headers


def _straight_traffic() -> list[bytes]:
    """Plain frames to four far ends and some super-frames, more than EXACT_TALKERS in all."""
    frames = []
    for i in range(1500):
        frames.append(udp_frame(dst=f"198.18.0.{2 + i % 4}", size=100 + i % 700))
        if i % 25 == 0:
            frames.append(_super_frame(1 + i % 40))
    return frames


def test_counting_in_bulk_after_sending_matches_counting_each_frame() -> None:
    """The worker sends straight-path frames first and counts them later from their sizes
    and the heads it copied; the figures must be those of counting each frame."""
    frames = _straight_traffic()
    each, bulk = pipeline({}), pipeline({})
    for frame in frames:
        assert each.forward(frame, 0.0) is True
    assert bulk.straight
    exact = bulk.exact_talkers_left
    assert exact == EXACT_TALKERS
    tally = StraightTally(exact)
    tally.frames = len(frames)
    tally.supers = [(len(f), f[:HEAD_BYTES]) for f in frames if f[1]]
    tally.plain_bytes = sum(len(f) for f in frames if not f[1])
    tally.sampled = [
        (place, len(f), f[:HEAD_BYTES])
        for place, f in enumerate(frames, start=1)
        if place <= exact or place % TALKER_SAMPLE == 0
    ]
    bulk.passed_straight(tally)
    assert bulk.frames_seen == each.frames_seen == len(frames)
    assert bulk.stats(0.0) == each.stats(0.0)
    top = each.stats(0.0).top_talkers
    assert {t.address for t in top} == {f"198.18.0.{n}" for n in (2, 3, 4, 5)}
    # Wire packets (a super-frame counts its pieces), exact for the first EXACT_TALKERS frames,
    # one frame in TALKER_SAMPLE weighted beyond:
    counted = [
        (1 if place <= EXACT_TALKERS else TALKER_SAMPLE) * wire_shape(f).packets
        for place, f in enumerate(frames, start=1)
        if place <= EXACT_TALKERS or place % TALKER_SAMPLE == 0
    ]
    assert sum(t.packets for t in top) == sum(counted)


@pytest.mark.parametrize("exact", [0, 5, 40, 1000])
@pytest.mark.parametrize("offset", [0, 3, 7])
def test_counting_a_batch_of_plain_frames_at_once_is_counting_each(exact: int, offset: int) -> None:
    """A worker counts a receive batch with no super-frame in one call (`count_plain`): the
    same frames, bytes and sampled heads, at the same places, as counting each frame, for
    batches that start and end anywhere around the exact budget and the sampling step."""
    stride = 256
    lengths = [1, 3, 32, 7, 1, 16, 9, 2, 32, 5]
    frames = [udp_frame(sport=40000 + n, size=60 + n % 90) for n in range(sum(lengths))]
    each, bulk = StraightTally(exact, offset), StraightTally(exact, offset)
    done = 0
    for length in lengths:
        buffer = bytearray(stride * length)
        for index, frame in enumerate(frames[done : done + length]):
            buffer[index * stride : index * stride + len(frame)] = frame
            each.count(buffer, index * stride, len(frame))
        sizes = [len(frame) for frame in frames[done : done + length]] + [9999]  # beyond count
        bulk.count_plain(memoryview(buffer), sizes, length, stride)
        done += length
    assert (bulk.frames, bulk.plain_bytes, bulk.supers) == (each.frames, each.plain_bytes, [])
    assert bulk.sampled == each.sampled
    exact_ones = min(exact, len(frames))
    assert len(each.sampled) > exact_ones or exact_ones == len(frames)  # and one in 8 beyond


@pytest.mark.parametrize("direction", ["egress", "ingress"])
def test_far_ends_summed_by_flow_are_those_of_reading_each_frame(direction: str) -> None:
    """Frames counted in bulk are summed by the few bytes that hold their flow fields before
    their far end is read once per flow: every kind of frame must come out as reading each
    one does (other ports and addresses, IPv4 options, fragments, VLAN tags, IPv6, ARP, and
    frames cut short or with bytes overwritten)."""
    kinds = [
        udp_frame(sport=40000),
        udp_frame(sport=40001),
        udp_frame(dst="198.18.0.3"),
        udp_frame(src="198.19.0.1"),
        tcp_frame(dport=443),
        tcp_frame(sport=443),
        with_vnet(Ether() / IP(src=CLIENT, dst=SERVER, options=[IPOption(b"\x01" * 4)]) / UDP()),
        # A later fragment whose payload looks like the first frame's ports: it has none.
        with_vnet(Ether() / IP(src=CLIENT, dst=SERVER, frag=3) / UDP(sport=40000, dport=5001)),
        with_vnet(Ether() / IP(src=CLIENT, dst=SERVER, flags="MF") / UDP(dport=11) / (b"f" * 30)),
        with_vnet(Ether() / IP(src=CLIENT, dst=SERVER, frag=3) / (b"g" * 30)),
        with_vnet(Ether() / Dot1Q(vlan=5) / IP(src=CLIENT, dst=SERVER) / UDP(dport=12)),
        udp_frame(src="2001:2::1", dst="2001:2::2"),
        arp_frame(),
        udp_frame()[: VNET_HDR_LEN + 14 + 22],  # the ports cut short
        *(with_vnet(frame) for frame in malformed_frames(seed=3, count=300)),
    ]
    frames = [kind for _ in range(3) for kind in kinds]
    each, bulk = pipeline({}, direction), pipeline({}, direction)
    for frame in frames:
        each.forward(frame, 0.0)
    tally = StraightTally(len(frames))
    for frame in frames:
        tally.count(frame, 0, len(frame))
    bulk.passed_straight(tally)
    assert sorted(bulk.far_ends()) == sorted(each.far_ends())
    assert len(each.far_ends()) > 10


def test_a_slower_stats_pace_counts_as_many_far_ends_a_second_exactly() -> None:
    """Stats once a second (nobody watching) must not make estimates of what ten a second
    counted exactly: the exact budget of a window grows with it, never below EXACT_TALKERS."""
    p = pipeline({})
    assert p.exact_talkers_left == EXACT_TALKERS
    p.pace_talkers(1.0)
    frames = [udp_frame(sport=n % 50) for n in range(3 * EXACT_TALKERS + 5)]
    for frame in frames:
        assert p.forward(frame, 0.0) is True
    (talker,) = p.stats(0.0).top_talkers
    assert talker.packets == len(frames)  # exact: no sample counted eight times
    p.pace_talkers(0.01)
    assert p.exact_talkers_left == EXACT_TALKERS


def test_far_ends_without_ports_count_as_one() -> None:
    """An ICMP echo's bytes where a port would be (its checksum, its sequence) change every
    packet: a host pinged is one far end with port 0, in the top talkers and the profile."""
    from scapy.layers.inet import ICMP

    from tests.frames_helpers import with_vnet

    p = pipeline({})
    for seq in range(20):
        p.forward(with_vnet(Ether() / IP(src=CLIENT, dst=SERVER) / ICMP(seq=seq)), 0.0)
    (talker,) = p.stats(0.0).top_talkers
    assert (talker.address, talker.protocol, talker.port, talker.packets) == (SERVER, 1, 0, 20)
    assert [(far[3], far[4]) for far in p.far_ends()] == [(0, 20)]


def test_far_ends_of_frames_held_in_bulk_count_when_read_as_if_on_arrival() -> None:
    """The far ends of frames held in bulk are counted when stats or the profile read them
    (or SETTLE_SAMPLES wait), not at each wake-up that holds some: the figures are those of
    `forward` once the frames left (a link that only delays drops none), talkers_changed says
    so meanwhile, and frames_seen counts at once."""
    spec = {"egress": {"latency": 5}}
    each, bulk = pipeline(spec), pipeline(spec)
    frames = [udp_frame(dst=f"198.18.0.{2 + n % 3}", size=50 + n) for n in range(30)]
    for n, frame in enumerate(frames):
        assert each.forward(frame, n * 0.001) is False
        tally = bulk.tally()
        tally.count(frame, 0, len(frame))
        bulk.hold([HeldRun("b", 0, 1, n * 0.001, n * 0.001, 1, len(frame) - 10, 0)], tally)
    assert bulk.frames_seen == each.frames_seen == len(frames)
    assert bulk.talkers_changed
    assert len(each.release(1.0)) == len(frames)
    assert sorted(bulk.far_ends()) == sorted(each.far_ends())
    assert not bulk.talkers_changed
    assert len(bulk.far_ends()) == 3  # counted once: reading again adds nothing
    assert bulk.stats(0.5).top_talkers == each.stats(0.5).top_talkers


def test_far_ends_of_frames_held_in_bulk_are_counted_a_slice_at_a_time() -> None:
    """Counting a whole stats window's far ends at the report held up every release for tens
    of milliseconds at high rates: they are counted whenever SETTLE_SAMPLES wait (here with
    stats once a second, so every frame is sampled), with the figures of `forward`."""
    spec = {"egress": {"latency": 5}}
    each, bulk = pipeline(spec), pipeline(spec)
    for p in (each, bulk):
        p.pace_talkers(1.0)
    count = 3 * SETTLE_SAMPLES + 40
    frames = [udp_frame(dst=f"198.18.0.{2 + n % 5}", sport=n % 3) for n in range(count)]
    for start in range(0, count, 32):  # a receive batch a tally, as a worker holds them
        batch = frames[start : start + 32]
        tally = bulk.tally()
        for n, frame in enumerate(batch, start):
            assert each.forward(frame, n * 0.001) is False
            tally.count(frame, 0, len(frame))
        size, at = len(batch), start * 0.001
        bulk.hold([HeldRun("b", 0, size, at, at, size, size * (len(batch[0]) - 10), 0)], tally)
        assert bulk.unsettled_samples < SETTLE_SAMPLES
    assert bulk.unsettled_samples > 0  # the last slice waits for the report
    assert len(each.release(10.0)) == count  # `forward`'s count as they leave
    assert sorted(bulk.far_ends()) == sorted(each.far_ends())
    assert bulk.unsettled_samples == 0
    assert bulk.stats(1.0).top_talkers == each.stats(1.0).top_talkers


def test_read_slack_is_the_least_delay_of_any_link_a_frame_may_take() -> None:
    """How long the worker may leave a frame unread: the least latency over the default link
    and every flow link (a blocked one holds nothing back)."""
    p = pipeline(
        {
            "default_link": {"egress": {"latency": 30}},
            "flows": [
                {"label": "a", "flow": {"ip": SERVER}, "link": {"egress": {"latency": 12}}},
                {"label": "b", "flow": {"ip": CLIENT}, "link": {"egress": {"rate": 0}}},
            ],
        }
    )
    assert p.read_slack == 0.012
    p.configure(loads_spec(json.dumps({"default_link": {"egress": {"latency": 30}}})), 1.0)
    assert p.read_slack == 0.030
    p.configure(loads_spec(json.dumps({"default_link": {"egress": {"rate": "1mbit"}}})), 2.0)
    assert p.read_slack == 0.0


def test_stats_measure_the_delay_frames_got_since_the_last_report() -> None:
    """Each report has the median and 99th percentile of arrival-to-release of the frames
    released since the one before: here 20 ms of latency, released 0.5 ms late for one in
    ten (the worker woke late), so p50 20 ms and p99 20.5 ms; none released, none measured."""
    p = pipeline({"default_link": {"egress": {"latency": 20}}})
    for i in range(100):
        p.receive(udp_frame(), i * 0.001)
    for i in range(100):
        due = not_before(i * 0.001, 0.020)  # the exact sum, rounded up: the delay is a floor
        p.release(due + (0.0005 if i % 10 == 9 else 0.0))
    stats = p.stats(1.0)
    assert stats.delay_samples == 100
    assert abs(stats.delay_p50_ms - 20.0) < 1e-6
    assert abs(stats.delay_p99_ms - 20.5) < 1e-6
    again = p.stats(2.0)
    assert (again.delay_samples, again.delay_p50_ms, again.delay_p99_ms) == (0, 0.0, 0.0)


def test_the_unshaped_port_passes_a_blocked_link_both_ways() -> None:
    """TCP to (ingress) or from (egress) the inner side's unshaped port passes at once through
    a link that drops everything; other ports, and UDP to that port, do not."""
    spec = loads_spec(json.dumps({"ingress": {"loss": 1.0}, "egress": {"rate": 0}}))
    ingress = DirectionPipeline(spec, "ingress", 0.0, seed=1, unshaped_port=80)
    egress = DirectionPipeline(spec, "egress", 0.0, seed=1, unshaped_port=80)
    assert ingress.forward(tcp_frame(src=SERVER, dst=CLIENT, sport=50000, dport=80), 0.0)
    assert egress.forward(tcp_frame(src=CLIENT, dst=SERVER, sport=80, dport=50000), 0.0)
    assert not ingress.forward(tcp_frame(src=SERVER, dst=CLIENT, sport=80, dport=50000), 0.0)
    assert not egress.forward(tcp_frame(src=CLIENT, dst=SERVER, sport=50000, dport=80), 0.0)
    assert not ingress.forward(udp_frame(src=SERVER, dst=CLIENT, dport=80), 0.0)
    ingress_total = ingress.stats(1.0).total
    assert ingress_total.packets_in == 3 and ingress_total.packets_out == 1
    assert ingress_total.drops.loss == 2
    egress_total = egress.stats(1.0).total
    assert egress_total.packets_in == 2 and egress_total.packets_out == 1


def test_frames_may_be_held_in_bulk_only_when_every_frame_only_waits() -> None:
    assert pipeline({"egress": {"latency": 5}}).delay_line is not None
    assert pipeline({"egress": {"latency": 5}}, "ingress").delay_line is None  # no latency
    for spec in (
        {"egress": {"latency": 5, "jitter": 1}},
        {"egress": {"latency": 5, "rate": "1mbit"}},
        {"default_link": {"egress": {"latency": 5}},
         "flows": [{"label": "a", "flow": {"protocol": 17}, "link": {"egress": {"latency": 5}}}]},
    ):  # fmt: skip
        assert pipeline(spec).delay_line is None, spec
    p = pipeline({"egress": {"latency": 5}})
    p.start_capture(128, False)  # a capture needs each frame's fate
    assert p.delay_line is None
    p.stop_capture()
    assert p.delay_line is not None
    sidecar = DirectionPipeline(loads_spec('{"egress": {"latency": 5}}'), "egress", 0.0,
                                unshaped_port=8080)  # fmt: skip
    assert sidecar.delay_line is None  # its API port must pass at once


def test_runs_held_in_bulk_come_out_of_release_in_order_with_copies() -> None:
    p = pipeline({"egress": {"latency": 5}})
    assert p.forward(udp_frame(sport=1), 0.0) is False  # one copy, due 0.005
    tally = p.tally()
    frame = udp_frame(sport=2)
    tally.count(frame, 0, len(frame))
    run = HeldRun("batch", 0, 1, 0.001, 0.001, 1, len(frame) - 10, len(frame) + 200)
    assert p.can_hold(run.held_bytes)
    p.hold([run], tally)
    assert p.next_deadline() == 0.005
    assert p.release(0.0055) == [udp_frame(sport=1)]
    assert p.release(0.006) == [run]
    assert p.idle
    stats = p.stats(0.006)
    assert stats.total.packets_in == stats.total.packets_out == 2
    assert stats.delay_samples == 2
    assert [t.port for t in stats.top_talkers] == [5001]
