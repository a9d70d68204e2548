"""netem's impairments, slots, rate accounting and outages in virtual time: rates inside their
99.9 % intervals over many packets, correlations measured, schedules exact."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from engine.core.correlated import CorrelatedEvent, CorrelatedUniform
from engine.core.corruption import complete_checksum, corrupt
from engine.core.frames import VNET_F_NEEDS_CSUM, VNET_HDR_LEN, VnetHeader, pseudo_header_sum
from engine.core.outages import OutageClock
from engine.model.impairments import Outage
from engine.model.spec import SpecError, parse_spec
from tests.impairment_helpers import (
    binomial_bounds,
    datagram,
    delays,
    link,
    simulate,
    steady,
    tag_of,
)

N = 20_000


def lag_one(values: list[float]) -> float:
    return statistics.correlation(values[:-1], values[1:])


def test_a_correlated_event_keeps_its_mean_and_has_the_correlation_asked_for() -> None:
    rng = random.Random(7)
    for p, c in ((0.01, 0.25), (0.1, 0.5), (0.3, 0.9)):
        event = CorrelatedEvent(p, c, rng)
        draws = [1.0 if event() else 0.0 for _ in range(400_000)]
        sd = (p * (1 - p) / 400_000 * (1 + c) / (1 - c)) ** 0.5  # a Markov chain's variance
        assert abs(statistics.fmean(draws) - p) < 4 * sd, (p, c)
        assert lag_one(draws) == pytest.approx(c, abs=0.02), (p, c)


def test_correlated_uniforms_stay_uniform_and_are_correlated() -> None:
    uniform = CorrelatedUniform(0.5, random.Random(3))
    draws = [uniform() for _ in range(200_000)]
    assert statistics.fmean(draws) == pytest.approx(0.5, abs=0.01)
    assert sum(d < 0.1 for d in draws) / len(draws) == pytest.approx(0.1, abs=0.01)
    assert lag_one(draws) == pytest.approx(0.4826, abs=0.02)  # (6/pi) asin(c/2)


def test_duplicates_come_at_their_rate_each_right_behind_its_original() -> None:
    lnk = link(duplicate=0.1, latency=5)
    arrivals = steady(1000, 0.0, N / 1000, datagram())
    released = simulate(lnk, arrivals, N / 1000 + 1)
    tags = [tag_of(f) for _, f in released]
    low, high = binomial_bounds(N, 0.1)
    assert low <= lnk.duplicated <= high
    assert len(tags) == N + lnk.duplicated
    doubled = [a for a, b in itertools.pairwise(tags) if a == b]
    assert len(doubled) == lnk.duplicated  # each copy right after its original
    assert lnk.stats().duplicated == lnk.duplicated


def test_corruption_flips_one_bit_past_the_ethernet_header() -> None:
    lnk = link(corrupt=0.05)
    original = datagram()
    arrivals = steady(1000, 0.0, N / 1000, original)
    released = simulate(lnk, arrivals, N / 1000 + 1)
    low, high = binomial_bounds(N, 0.05)
    assert low <= lnk.corrupted <= high
    sent = {tag_of(f): f for _, f in arrivals}
    changed = 0
    for _, frame in released:
        before = sent.get(tag_of(frame))
        if before is None or before == frame:  # (a flip in the tag itself makes it unknown)
            continue
        diff = [i for i, (a, b) in enumerate(zip(before, frame, strict=True)) if a != b]
        assert len(diff) == 1 and diff[0] >= VNET_HDR_LEN + 14
        assert bin(before[diff[0]] ^ frame[diff[0]]).count("1") == 1
        changed += 1
    assert changed >= lnk.corrupted - 0.01 * N  # all but those whose tag was hit


def test_a_partial_checksum_is_completed_before_a_bit_is_flipped() -> None:
    packet = Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1, dport=2) / (b"z" * 64)
    good = bytes(packet)
    right = Ether(good)[UDP].chksum
    frame = bytearray(
        VnetHeader(VNET_F_NEEDS_CSUM, 0, 0, 0, 34, 6).pack() + good
    )  # the sender left the checksum to the hardware: only the pseudo-header's sum is there
    seed = pseudo_header_sum(4, bytes(frame[36:40]), bytes(frame[40:44]), 17, 8 + 64)
    frame[VNET_HDR_LEN + 40 : VNET_HDR_LEN + 42] = seed.to_bytes(2, "big")
    complete_checksum(frame)
    assert frame[0] & VNET_F_NEEDS_CSUM == 0
    assert Ether(bytes(frame[VNET_HDR_LEN:]))[UDP].chksum == right
    flipped, bit = corrupt(bytes(frame), random.Random(1))
    assert sum(a != b for a, b in zip(flipped, frame, strict=True)) == 1
    assert bit is not None  # the bit it says is the one that differs
    at = VNET_HDR_LEN + bit // 8
    assert flipped[at] ^ frame[at] == 1 << bit % 8


def test_netem_reordering_sends_its_share_ahead_of_the_latency() -> None:
    lnk = link(latency=10, reorder=0.25)
    arrivals = steady(1000, 0.0, N / 1000, datagram())
    released = simulate(lnk, arrivals, N / 1000 + 1)
    low, high = binomial_bounds(N, 0.25)
    assert low <= lnk.reordered <= high
    waits = delays(released, arrivals)
    assert sum(1 for w in waits if w < 0.001) == lnk.reordered  # skipped the 10 ms
    assert sum(1 for w in waits if w >= 0.010 - 1e-9) == N - lnk.reordered
    # Each frame sent past its latency overtakes frames that came before it. Counted as the
    # frames with an earlier one behind them, not as neighbours out of order: which of two
    # frames due at the same float time goes first is rounding (a deadline is rounded up),
    # and two frames reordered one after the other leave as neighbours in order.
    tags = [tag_of(f) for _, f in released]
    behind = list(itertools.accumulate(reversed(tags), min))[::-1]  # least tag from here on
    overtaking = sum(1 for i, tag in enumerate(tags[:-1]) if behind[i + 1] < tag)
    assert overtaking > 0.9 * lnk.reordered


def test_a_reorder_gap_lets_only_every_nth_packet_overtake() -> None:
    lnk = link(latency=10, reorder=1.0, gap=5)
    arrivals = steady(1000, 0.0, 1.0, datagram())
    released = simulate(lnk, arrivals, 2.0)
    early = sorted(tag_of(f) for f, w in zip([f for _, f in released],
                   delays(released, arrivals), strict=True) if w < 0.001)  # fmt: skip
    assert early == list(range(4, 1000, 5))


def test_correlated_loss_keeps_its_mean_in_the_link() -> None:
    lnk = link(loss=0.1, loss_correlation=0.6)
    arrivals = steady(1000, 0.0, N / 1000, datagram())
    released = simulate(lnk, arrivals, N / 1000 + 1)
    sd = (0.1 * 0.9 / N * 1.6 / 0.4) ** 0.5
    assert abs(lnk.drop_loss / N - 0.1) < 4 * sd
    kept = {tag_of(f) for _, f in released}
    outcomes = [0.0 if i in kept else 1.0 for i in range(N)]
    assert lag_one(outcomes) == pytest.approx(0.6, abs=0.05)


def test_correlated_jitter_keeps_its_distribution() -> None:
    for distribution in ("uniform", "normal", "pareto"):
        lnk = link(latency=10, jitter=10, jitter_correlation=0.8, reorder_packets=True,
                   jitter_distribution=distribution)  # fmt: skip
        arrivals = steady(1000, 0.0, 10.0, datagram())
        released = sorted(simulate(lnk, arrivals, 12.0), key=lambda item: tag_of(item[1]))
        waits = [w - 0.010 for w in delays(released, arrivals)]  # in arrival order
        assert min(waits) >= -1e-9
        assert statistics.fmean(waits) == pytest.approx(0.005, abs=0.0008), distribution
        assert lag_one(waits) > 0.5, distribution


def test_slots_gather_deliveries() -> None:
    lnk = link(slot={"min_delay": 10, "max_delay": 10, "packets": 3})
    arrivals = steady(200, 0.0, 1.0, datagram())  # under the slots' 300 a second
    released = simulate(lnk, arrivals, 2.0)
    assert len(released) == 200
    times = sorted({round(t, 9) for t, _ in released})
    assert all(b - a >= 0.010 - 1e-9 for a, b in itertools.pairwise(times))
    per_slot = [sum(1 for t, _ in released if round(t, 9) == slot) for slot in times]
    assert max(per_slot) == 3
    alone = link(slot={"min_delay": 5, "max_delay": 15})
    waits = delays(simulate(alone, [(1.0, datagram())], 2.0), [(1.0, datagram())])
    assert 0.005 <= waits[0] <= 0.015  # an idle link's packet waits for a new slot


def test_overhead_and_cells_replace_the_framing_in_the_rate() -> None:
    arrivals = [(0.0, datagram())]
    framed = link(rate=1_000_000)
    cells = link(rate=1_000_000, overhead=0, cell_size=48, cell_overhead=5)
    minus = link(rate=1_000_000, overhead=-14)
    assert simulate(framed, arrivals, 1.0)[0][0] == pytest.approx(1024 * 8 / 1e6)
    assert simulate(cells, arrivals, 1.0)[0][0] == pytest.approx(21 * 53 * 8 / 1e6)  # ATM
    assert simulate(minus, arrivals, 1.0)[0][0] == pytest.approx(986 * 8 / 1e6)


def test_a_periodic_outage_drops_what_arrives_while_down() -> None:
    lnk = link(outage={"period": 1000, "down": 200})
    arrivals = steady(100, 0.0, 3.0, datagram())
    released = simulate(lnk, arrivals, 4.0)
    down = [at for at, _ in arrivals if at % 1.0 >= 0.8 - 1e-9]
    assert lnk.drop_outage == len(down) == len(arrivals) - len(released)
    assert lnk.stats().drops.outage == len(down)


def test_a_held_outage_keeps_what_arrives_until_the_link_is_back() -> None:
    lnk = link(outage={"period": 1000, "down": 200, "mode": "hold"}, rate=100_000_000)
    arrivals = steady(100, 0.0, 3.0, datagram())
    released = simulate(lnk, arrivals, 4.0)
    assert len(released) == len(arrivals) and lnk.stats().drops.total == 0
    for t, _ in released:
        assert t % 1.0 < 0.8 or t % 1.0 < 1e-6 or abs(t % 1.0 - 1.0) < 1e-6
    held = [w for w in delays(released, arrivals) if w > 0.005]  # (a burst leaves in 2 ms)
    assert len(held) == sum(1 for at, _ in arrivals if at % 1.0 >= 0.8 - 1e-9)
    assert max(held) == pytest.approx(0.2, abs=0.001)


def test_a_random_outage_is_down_for_its_share_of_the_time() -> None:
    clock = OutageClock(Outage(mean_up=900, mean_down=100), random.Random(5), 0.0)
    samples = [clock.down_until(i * 0.01) is not None for i in range(200_000)]  # 2000 s
    assert sum(samples) / len(samples) == pytest.approx(0.1, abs=0.015)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"duplicate": 2},
            "default_link.egress.duplicate: must be at most 100 % (got 200 %)",
        ),
        ({"corrupt": "x"}, "default_link.egress.corrupt:"),
        ({"gap": 0}, "default_link.egress.gap:"),
        ({"reorder_correlation": -1}, "default_link.egress.reorder_correlation:"),
        ({"slot": {"max_delay": 5}}, "default_link.egress.slot.min_delay: required (missing)"),
        ({"slot": {"min_delay": 5, "max_delay": 1}}, "max_delay is below min_delay"),
        ({"overhead": 100000}, "default_link.egress.overhead:"),
        ({"cell_size": 0}, "default_link.egress.cell_size:"),
        ({"outage": {"period": 100, "down": 100}}, "down must be above 0 and below period"),
        ({"outage": {"mean_up": 100}}, "mean_up and mean_down"),
        ({"outage": {"period": 100, "down": 10, "mode": "x"}}, "default_link.egress.outage.mode:"),
        ({"queue": {"discipline": "red"}}, "default_link.egress.queue.discipline:"),
        ({"queue": {"discipline": "codel", "tupdate": 5}}, "tupdate is a setting of pie"),
        ({"queue": {"ecn": True}}, "ecn needs an AQM"),
        ({"queue": {"discipline": "fq_codel", "flows": 0}}, "default_link.egress.queue.flows:"),
        ({"queue": {"discipline": "codel", "interval": 0}}, "interval must be above 0"),
        ({"markov_loss": {"p13": 0.7, "p14": 0.5}}, "p13 + p14 must be at most 1"),
        ({"markov_loss": {"p31": 0.5}}, "default_link.egress.markov_loss.p13: required (missing)"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_field(fields: dict[str, object],
                                                         words: str) -> None:  # fmt: skip
    with pytest.raises(SpecError) as caught:
        parse_spec({"egress": fields})
    message = str(caught.value)
    assert words in message and "\n" not in message


def markov_stationary_loss(p13: float, p31: float, p32: float, p23: float, p14: float) -> float:
    """The long-run loss of netem's four-state chain, from its transition matrix."""
    to = {
        1: {3: p13, 4: p14, 1: 1 - p13 - p14},
        2: {3: p23, 2: 1 - p23},
        3: {1: p31, 2: p32, 3: 1 - p31 - p32},
        4: {1: 1.0},
    }
    share = dict.fromkeys(to, 0.25)
    for _ in range(5000):
        nxt = dict.fromkeys(to, 0.0)
        for state, weight in share.items():
            for target, p in to[state].items():
                nxt[target] += weight * p
        share = nxt
    return share[3] + share[4]


def test_the_four_state_loss_model_loses_its_stationary_share() -> None:
    for fields in ({"p13": 0.05, "p31": 0.4, "p32": 0.2, "p23": 0.1, "p14": 0.02},
                   {"p13": 0.1}):  # fmt: skip
        lnk = link(markov_loss=fields)
        arrivals = steady(1000, 0.0, 50.0, datagram())
        simulate(lnk, arrivals, 51.0)
        model = lnk.spec.markov_loss
        assert model is not None
        expected = markov_stationary_loss(model.p13, model.leave_burst, model.p32, model.p23,
                                          model.p14)  # fmt: skip
        n = len(arrivals)
        assert lnk.drop_loss / n == pytest.approx(expected, rel=0.08), fields
    # tc's defaults with p13 alone (p31 = 1 - p13, never into state 2): Bernoulli(p13).
    assert markov_stationary_loss(0.1, 0.9, 0.0, 1.0, 0.0) == pytest.approx(0.1)


def test_loss_ecn_marks_capable_packets_instead_of_dropping_them() -> None:
    capable = link(loss=0.2, loss_ecn=True)
    arrivals = steady(1000, 0.0, 5.0, datagram(ecn=2))
    released = simulate(capable, arrivals, 6.0)
    assert len(released) == len(arrivals) and capable.drop_loss == 0
    low, high = binomial_bounds(len(arrivals), 0.2)
    assert low <= capable.ecn_marked <= high
    assert sum(1 for _, f in released if f[VNET_HDR_LEN + 15] & 3 == 3) == capable.ecn_marked
    plain = link(loss=0.2, loss_ecn=True)
    simulate(plain, steady(1000, 0.0, 5.0, datagram()), 6.0)
    assert plain.drop_loss > 0 and plain.ecn_marked == 0
