"""The queue disciplines in virtual time: CoDel, FQ-CoDel and PIE against their RFCs' control
laws and behaviour, ECN marking instead of dropping, head drop, DRR fairness."""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from engine.core.delay_line import Released
from engine.core.disciplines.codel import control_law
from engine.core.disciplines.pie import PieQueue, tuned
from engine.core.ecn import CE, ECT_0, ECT_1, NOT_ECT, ecn_field, mark_ce
from engine.core.frames import VNET_HDR_LEN
from engine.core.link import Link
from engine.core.packet import Packet
from engine.model.impairments import Discipline, QueueLimit
from engine.model.spec import LinkSpec
from tests.frames_helpers import copy_of
from tests.impairment_helpers import (
    datagram,
    delays,
    link,
    median,
    rng,
    simulate,
    steady,
    tag_of,
    tagged,
)

#: 8 Mbit/s: a 1000-byte frame (1024 with framing) takes 1.024 ms; 976.6 frames/s.
RATE = 8_000_000
SERVICE = 1024 * 8 / RATE


def ipv4_checksum_ok(frame: bytes) -> bool:
    """Whether the IPv4 header's checksum is what scapy computes for the header as it is."""
    ip = Ether(frame[VNET_HDR_LEN:])[IP]
    rebuilt = ip.copy()
    del rebuilt.chksum
    return bool(IP(bytes(rebuilt)).chksum == ip.chksum)


def test_codel_control_law_spaces_drops_by_interval_over_root_count() -> None:
    assert control_law(1.0, 0.1, 1) == pytest.approx(1.1)
    assert control_law(1.0, 0.1, 4) == pytest.approx(1.05)
    assert control_law(0.0, 0.1, 100) == pytest.approx(0.01)


def overload(discipline: str, seconds: float = 10.0, ecn: int = 0, **queue: object
             ) -> tuple[list[float], Link]:  # fmt: skip
    """10 % more than the rate of one unresponsive flow; the delays of what arrived in the
    second half, and the link."""
    lnk = link(rate=RATE, queue={"discipline": discipline, **queue})
    arrivals = steady(1.1 / SERVICE, 0.0, seconds, datagram(ecn=ecn))
    released = simulate(lnk, arrivals, seconds + 2)
    return delays(released, arrivals, after=seconds / 2), lnk


def test_tail_drop_lets_the_queue_stand_and_codel_keeps_it_near_target() -> None:
    tail, tail_link = overload("tail_drop")
    codel, codel_link = overload("codel")
    assert median(tail) > 0.5  # a standing queue of ~1 s (the time limit)
    # An unresponsive flow 10 % over the rate: CoDel cannot hold it at its 5 ms target (that
    # takes a sender that slows down) but saws between a few ms and ~50 ms, dropping what
    # exceeds the rate, where tail drop holds a second.
    assert median(codel) < 0.05
    stats = codel_link.stats()
    excess = 10.0 * (1.1 / SERVICE - 1 / SERVICE)
    assert 0.8 * excess <= stats.drops.aqm <= 1.2 * excess
    assert stats.drops.queue_full == 0 and stats.ecn_marked == 0
    assert tail_link.stats().drops.aqm == 0


def test_codel_waits_an_interval_above_target_before_its_first_drop() -> None:
    lnk = link(rate=RATE, queue={"discipline": "codel"})
    arrivals = steady(1.1 / SERVICE, 0.0, 2.0, datagram())
    # The queue grows by 0.1 packet per service time: it is 5 ms deep (target) after about
    # 49 ms; nothing may be dropped until an interval (100 ms) after that.
    simulate(lnk, [a for a in arrivals if a[0] < 0.14], 0.15)
    assert lnk.drop_aqm == 0
    lnk2 = link(rate=RATE, queue={"discipline": "codel"})
    simulate(lnk2, arrivals, 2.0)
    assert lnk2.drop_aqm > 0


def test_below_the_rate_codel_and_pie_drop_nothing() -> None:
    for discipline in ("codel", "fq_codel", "pie"):
        lnk = link(rate=RATE, queue={"discipline": discipline})
        arrivals = steady(0.9 / SERVICE, 0.0, 5.0, datagram())
        released = simulate(lnk, arrivals, 6.0)
        assert len(released) == len(arrivals), discipline


def test_ecn_marks_capable_packets_instead_of_dropping_them() -> None:
    lnk = link(rate=RATE, queue={"discipline": "codel", "ecn": True})
    arrivals = steady(1.1 / SERVICE, 0.0, 6.0, datagram(ecn=ECT_0))
    released = simulate(lnk, arrivals, 8.0)
    stats = lnk.stats()
    assert stats.drops.aqm == 0 and stats.ecn_marked > 0
    ce = [frame for _, frame in released if ecn_field(frame) == CE]
    assert len(ce) == stats.ecn_marked
    assert ipv4_checksum_ok(ce[0])
    # Not ECN-capable: dropped, as without ECN.
    plain = link(rate=RATE, queue={"discipline": "codel", "ecn": True})
    simulate(plain, steady(1.1 / SERVICE, 0.0, 6.0, datagram()), 8.0)
    assert plain.stats().drops.aqm > 0 and plain.stats().ecn_marked == 0


def test_mark_ce_keeps_the_ipv4_checksum_right_and_handles_ipv6() -> None:
    for ecn in (ECT_0, ECT_1):
        frame = mark_ce(datagram(ecn=ecn))
        assert frame is not None
        assert Ether(frame[VNET_HDR_LEN:])[IP].tos & 3 == CE
        assert ipv4_checksum_ok(frame)
    v6 = mark_ce(datagram(ecn=ECT_1, v6=True))
    assert v6 is not None and Ether(v6[VNET_HDR_LEN:])[IPv6].tc & 3 == CE
    assert mark_ce(datagram(ecn=NOT_ECT)) is None
    already = datagram(ecn=CE)
    assert mark_ce(already) == already
    assert mark_ce(b"\x00" * 20) is None


def test_fq_codel_serves_a_sparse_flow_ahead_of_a_bulk_one() -> None:
    bulk = steady(2.0 / SERVICE, 0.0, 5.0, datagram(sport=1000), first_tag=0)
    sparse = steady(50, 0.0, 5.0, datagram(sport=2000, l2=200), first_tag=1_000_000)
    waits = {}
    for discipline in ("tail_drop", "fq_codel"):
        lnk = link(rate=RATE, queue={"discipline": discipline})
        released = simulate(lnk, bulk + sparse, 6.0)
        waits[discipline] = delays([r for r in released if tag_of(r[1]) >= 1_000_000], sparse,
                                   after=1.0)  # fmt: skip
    assert median(waits["tail_drop"]) > 0.5  # behind a full tail-drop queue
    assert len(waits["fq_codel"]) == sum(1 for at, _ in sparse if at >= 1.0)  # none dropped
    assert max(waits["fq_codel"]) < 2 * SERVICE  # at most the bulk packet in service ahead


def test_fq_codel_shares_the_rate_between_flows_by_round_robin() -> None:
    """Two backlogged flows of equal packets get half the rate each, however unequal their
    offered loads (DRR with one quantum a round)."""
    heavy = steady(1.5 / SERVICE, 0.0, 6.0, datagram(sport=1000), first_tag=0)
    light = steady(0.7 / SERVICE, 0.0, 6.0, datagram(sport=2000), first_tag=1_000_000)
    lnk = link(rate=RATE, queue={"discipline": "fq_codel"})
    released = simulate(lnk, heavy + light, 6.0)
    window = [f for t, f in released if 2.0 <= t < 6.0]
    share = sum(1 for f in window if tag_of(f) >= 1_000_000) / len(window)
    assert 0.47 <= share <= 0.53


def test_fq_codel_over_its_limit_drops_from_the_fattest_flow() -> None:
    lnk = link(rate=RATE, queue={"discipline": "fq_codel", "packets": 20})
    flood = [(0.0, tagged(datagram(sport=1000), i)) for i in range(200)]
    small = [(0.0005 * (i + 1), tagged(datagram(sport=2000), 1_000_000 + i)) for i in range(5)]
    released = simulate(lnk, flood + small, 1.0)
    tags = {tag_of(f) for _, f in released}
    assert all(1_000_000 + i in tags for i in range(5))  # the small flow lost nothing
    assert lnk.drop_queue_full == 200 + 5 - len(released)


def test_head_drop_keeps_the_newest_and_tail_drop_the_oldest() -> None:
    burst = [(0.0, tagged(datagram(), i)) for i in range(10)]
    tail = link(rate=RATE, queue={"packets": 5})
    head = link(rate=RATE, queue={"packets": 5, "discipline": "head_drop"})
    assert [tag_of(f) for _, f in simulate(tail, burst, 1.0)] == [0, 1, 2, 3, 4]
    assert [tag_of(f) for _, f in simulate(head, burst, 1.0)] == [5, 6, 7, 8, 9]
    assert tail.drop_queue_full == head.drop_queue_full == 5


def test_pie_autotunes_its_step_and_caps_it() -> None:
    assert tuned(1.0, 0.0) == 1 / 2048
    assert tuned(1.0, 5e-6) == 1 / 512
    assert tuned(1.0, 0.05) == 0.5
    assert tuned(1.0, 0.5) == 1.0
    pie = PieQueue(QueueLimit(discipline="pie"), rng(1))
    pie.update(0.020)  # 20 ms against the 15 ms target, from 0: a step of 0.025625 / 2048
    assert pie.drop_prob == pytest.approx((0.125 * 0.005 + 1.25 * 0.020) / 2048)
    assert pie.qdelay_old == 0.020
    assert pie.burst_allowance == pytest.approx(0.150 - 0.015)
    pie.drop_prob = 0.5
    pie.update(0.5)  # over 250 ms: capped step of 2 %, plus 2 %
    assert pie.drop_prob == pytest.approx(0.54)
    pie.drop_prob, pie.qdelay_old = 0.1, 0.0
    pie.update(0.0)  # no queue, none before: decays by 2 %
    assert pie.drop_prob == pytest.approx(0.1 * 0.98 + tuned(-0.125 * 0.015, 0.1) * 0.98)


def test_pie_holds_the_delay_near_its_target() -> None:
    tail, _ = overload("tail_drop", seconds=20)
    pie, lnk = overload("pie", seconds=20)
    assert median(tail) > 0.5
    assert 0.010 < median(pie) < 0.025  # target 15 ms (measured 14.8 ms)
    assert lnk.stats().drops.aqm > 0


def test_changing_discipline_keeps_what_is_queued() -> None:
    lnk = link(rate=RATE)
    for i in range(50):
        lnk.offer(Packet(tagged(datagram(), i), 0.0, 1, 1000))
    kinds: list[Discipline] = ["fq_codel", "pie", "codel", "head_drop", "tail_drop", "codel"]
    for discipline in kinds:
        lnk.configure(LinkSpec(rate=RATE, queue=QueueLimit(discipline=discipline)), 0.0)
    out: list[Released] = []
    lnk.advance(1.0, out)
    assert [tag_of(copy_of(f)) for _, _, f in out] == list(range(50))
    assert lnk.stats().drops.total == 0


@pytest.mark.parametrize("discipline", ["tail_drop", "head_drop", "codel", "fq_codel", "pie"])
def test_waking_only_when_something_may_leave_changes_nothing(discipline: str) -> None:
    # Two flows offered 1.5x a 2 Mbit/s link with 10 ms of latency and a short queue, so that
    # the queue fills, drops and (for the AQMs) manages: the same frames leave at the same
    # times whether the link is advanced every 50 µs or only at its events and arrivals.
    arrivals = sorted(
        steady(250, 0.0, 2.0, datagram(sport=1))
        + steady(125, 0.001, 2.0, datagram(sport=2), first_tag=10_000),
        key=lambda item: item[0],
    )
    fields: dict[str, Any] = {
        "rate": "2mbit",
        "latency": 10,
        "queue": {"discipline": discipline, "packets": 20},
    }
    by_events = simulate(link(**fields), arrivals, 3.0)
    by_steps = simulate(link(**fields), arrivals, 3.0, step=0.00005)
    assert len(by_events) < len(arrivals)  # something was dropped: the queue mattered
    assert [tag_of(f) for _, f in by_events] == [tag_of(f) for _, f in by_steps]
    assert [t for t, _ in by_events] == pytest.approx([t for t, _ in by_steps], abs=1e-9)
