"""Reproducible fates (a link's `seed`), in virtual time with real IP frames: the same traffic
meets the same fates whatever its timing and whatever the link's own `Random`; a different
seed gives a different set at the same rate; a retransmission gets a fresh decision."""

from __future__ import annotations

import random
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from engine.core.frames import PLAIN_VNET_HDR
from engine.core.link import Link
from engine.model.spec import LinkSpec, SpecError, parse_spec
from tests.impairment_helpers import datagram, simulate, tag_of, tagged

N = 5000
#: Gilbert-Elliott loss of mean 10 % (0.05 / (0.05 + 0.45)), bursts of 2.2 packets on average.
GE_LOSS = {"p_enter": 0.05, "p_exit": 0.45, "loss_in_burst": 1.0}
LATENCY_MS = 20.0


def seeded_link(seed: int | None, link_rng: int, **fields: Any) -> Link:
    spec = LinkSpec.model_validate({"seed": seed, **fields})
    return Link(spec, random.Random(link_rng), now=0.0, label="game")


def run(lnk: Link, gap: float, start: float, count: int = N) -> dict[int, float]:
    """Offer `count` numbered datagrams `gap` apart; each delivered tag with its delay."""
    template = datagram()
    arrivals = [(start + i * gap, tagged(template, i)) for i in range(count)]
    arrived = {tag_of(frame): at for at, frame in arrivals}
    released = simulate(lnk, arrivals, start + count * gap + 2.0)
    return {tag_of(f): t - arrived[tag_of(f)] for t, f in released}


def ge_jitter(seed: int | None, link_rng: int) -> Link:
    return seeded_link(seed, link_rng, burst_loss=GE_LOSS, latency=LATENCY_MS, jitter=10.0,
                       reorder_packets=True)  # fmt: skip


def test_the_same_datagrams_meet_the_same_loss_and_delays_whatever_their_timing() -> None:
    first = run(ge_jitter(42, link_rng=1), gap=0.001, start=0.0)
    second = run(ge_jitter(42, link_rng=2), gap=0.0037, start=5.25)  # other times, other rng
    dropped = set(range(N)) - first.keys()
    assert 0.07 * N < len(dropped) < 0.13 * N  # the configured 10 %
    assert first.keys() == second.keys()
    assert all(abs(first[tag] - second[tag]) < 1e-9 for tag in first)
    jitters = [delay - LATENCY_MS / 1000 for delay in first.values()]
    assert min(jitters) >= 0 and max(jitters) <= 0.010
    assert len({round(j, 9) for j in jitters}) > 0.9 * len(jitters)  # drawn, not one value


def test_without_a_seed_the_fates_follow_the_random_stream() -> None:
    first = run(ge_jitter(None, link_rng=1), gap=0.001, start=0.0)
    second = run(ge_jitter(None, link_rng=2), gap=0.001, start=0.0)
    assert first.keys() != second.keys()


def test_another_seed_drops_another_set_at_the_same_rate() -> None:
    first = set(range(N)) - run(ge_jitter(42, link_rng=1), gap=0.001, start=0.0).keys()
    other = set(range(N)) - run(ge_jitter(43, link_rng=1), gap=0.001, start=0.0).keys()
    for dropped in (first, other):
        assert 0.07 * N < len(dropped) < 0.13 * N
    # Independent sets of 10 % share about 10 % of their members; the same set, all.
    assert len(first & other) < 0.25 * len(first)


def test_a_datagram_sent_again_meets_a_fresh_decision_the_same_on_every_run() -> None:
    def twice(link_rng: int) -> list[bool]:
        lnk = seeded_link(7, link_rng, loss=0.5)
        template = datagram()
        arrivals = [(i * 0.001, tagged(template, i % 1000)) for i in range(2000)]
        released = simulate(lnk, arrivals, 4.0)
        counts = [0] * 1000
        for _, frame in released:
            counts[tag_of(frame)] += 1
        return [count > 0 for count in counts]

    first = twice(1)
    assert first == twice(2)
    # Both copies lost with 25 %, neither with 25 %: a fresh decision, not the first one again.
    assert 150 < first.count(False) < 350


def test_duplicates_and_corrupted_bits_are_the_same_on_every_run() -> None:
    def frames(link_rng: int, gap: float) -> list[bytes]:
        lnk = seeded_link(9, link_rng, duplicate=0.1, corrupt=0.1, latency=1)
        template = datagram()
        arrivals = [(i * gap, tagged(template, i)) for i in range(N)]
        released = simulate(lnk, arrivals, N * gap + 1)
        return sorted(frame for _, frame in released)

    first = frames(1, 0.001)
    assert first == frames(3, 0.002)
    assert 0.07 * N < len(first) - N < 0.13 * N  # the copies


def tcp_transfer(client_port: int, isn: int, server_isn: int) -> list[bytes]:
    """A client's frames of one connection: SYN, 300 segments of 1000 bytes, and ACKs of the
    server's data (its ISN `server_isn`), with this run's port and initial sequence number."""
    ip = IP(src="198.18.0.1", dst="198.18.0.2")
    frames = [ip / TCP(sport=client_port, dport=80, flags="S", seq=isn)]
    for i in range(300):
        seq = (isn + 1 + i * 1000) % (1 << 32)
        ack = (server_isn + 1 + (i // 3) * 1448) % (1 << 32)
        frames.append(ip / TCP(sport=client_port, dport=80, flags="A", seq=seq, ack=ack)
                      / bytes(1000))  # fmt: skip
        if i % 2:
            frames.append(ip / TCP(sport=client_port, dport=80, flags="A", seq=seq + 1000,
                                   ack=ack + 1448))  # fmt: skip
    return [PLAIN_VNET_HDR + bytes(Ether() / frame) for frame in frames]


def test_a_tcp_transfer_meets_the_same_losses_whatever_its_port_and_isn() -> None:
    def dropped(client_port: int, isn: int, server_isn: int, link_rng: int) -> list[int]:
        lnk = seeded_link(5, link_rng, loss=0.1)
        frames = tcp_transfer(client_port, isn, server_isn)
        arrivals = [(i * 0.001, frame) for i, frame in enumerate(frames)]
        released = {frame for _, frame in simulate(lnk, arrivals, len(frames) * 0.001 + 1)}
        return [i for i, frame in enumerate(frames) if frame not in released]

    first = dropped(40001, 1000, 77, link_rng=1)
    assert 20 < len(first) < 70  # 10 % of 451
    assert first == dropped(51234, 3_000_000_000, 4_000_000_000, link_rng=2)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-1, "default_link.egress.seed: must be at least 0 (got -1)"),
        ("abc", "default_link.egress.seed: must be a valid integer"),
        (1 << 64, "default_link.egress.seed: must be at most 18446744073709551615"),
    ],
)
def test_a_bad_seed_is_refused_naming_the_field(value: object, reason: str) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec({"default_link": {"egress": {"seed": value}}})
    assert str(refused.value).startswith(reason)
    assert "\n" not in str(refused.value)
