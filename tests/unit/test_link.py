"""The impairment pipeline in virtual time: every number here is exact or has a stated bound."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import pytest

from engine.core.deadlines import not_before
from engine.core.delay_line import Released
from engine.core.impairments import PARETO_CAP
from engine.core.link import Link
from engine.core.packet import HeldRun, Packet
from engine.model.spec import FRAMING_OVERHEAD, LinkSpec
from tests.frames_helpers import copy_of

L2 = 1000  # bytes per test frame; on the wire it weighs L2 + FRAMING_OVERHEAD


def link(seed: int = 1, **fields: Any) -> Link:
    return Link(LinkSpec.model_validate(fields), random.Random(seed), now=0.0)


def packet(at: float, tag: int = 0, droppable: bool = True) -> Packet:
    return Packet(tag.to_bytes(4, "big"), at, 1, L2, droppable)


def run(
    lnk: Link, arrivals: list[float], until: float, step: float = 1e-4
) -> list[tuple[float, int]]:
    """Feed packets at the given times and collect (release time, tag) in release order."""
    out: list[Released] = []
    pending = sorted((t, i) for i, t in enumerate(arrivals))
    now = 0.0
    index = 0
    while now <= until:
        while index < len(pending) and pending[index][0] <= now:
            lnk.offer(packet(pending[index][0], pending[index][1]))
            index += 1
        lnk.advance(now, out)
        now += step
    return [(t, int.from_bytes(copy_of(frame), "big")) for t, _, frame in out]


def feed(lnk: Link, n: int, spacing: float) -> list[Released]:
    """Offer n packets `spacing` apart, letting time pass between them; collect all output."""
    out: list[Released] = []
    for i in range(n):
        lnk.offer(packet(i * spacing, i))
        lnk.advance(i * spacing, out)
    lnk.advance(1e9, out)
    return out


def binomial_interval(n: int, p: float, z: float = 2.576) -> tuple[float, float]:
    sd = math.sqrt(n * p * (1 - p))
    return n * p - z * sd, n * p + z * sd


def test_rate_serialises_each_packet_at_the_configured_rate() -> None:
    rate = 1_000_000
    lnk = link(rate=rate)
    out = run(lnk, [0.0] * 10, until=0.2)
    per_packet = (L2 + FRAMING_OVERHEAD) * 8 / rate
    assert [t for t, _ in out] == pytest.approx([per_packet * (i + 1) for i in range(10)])
    assert [tag for _, tag in out] == list(range(10))


def test_spaced_arrivals_are_not_delayed_below_the_rate() -> None:
    lnk = link(rate=100_000_000)
    out = run(lnk, [0.001 * i for i in range(20)], until=0.05, step=1e-5)
    tx = (L2 + FRAMING_OVERHEAD) * 8 / 100_000_000
    for released, tag in out:
        assert released == pytest.approx(0.001 * tag + tx)


def test_queue_limit_in_packets_tail_drops() -> None:
    lnk = link(rate=1_000_000, queue={"packets": 5, "ms": None})
    out = run(lnk, [0.0] * 20, until=0.5)
    assert len(out) == 5
    assert lnk.drop_queue_full == 15
    assert [tag for _, tag in out] == [0, 1, 2, 3, 4]


def test_queue_limit_in_bytes() -> None:
    lnk = link(rate=1_000_000, queue={"packets": None, "bytes": 3 * L2, "ms": None})
    run(lnk, [0.0] * 10, until=0.5)
    assert lnk.drop_queue_full == 7


def test_queue_limit_in_milliseconds() -> None:
    # 8.192 ms per packet at 1 Mbit/s: a 50 ms limit holds 6 packets.
    lnk = link(rate=1_000_000, queue={"packets": None, "ms": 50})
    run(lnk, [0.0] * 10, until=0.5)
    assert lnk.drop_queue_full == 4
    assert lnk.packets_out == 6


def test_rate_zero_blocks_and_unblocking_resumes_now() -> None:
    lnk = link(rate=0)
    lnk.offer(packet(0.0))
    assert lnk.drop_blocked == 1
    lnk.configure(LinkSpec(rate=1_000_000), now=0.0)
    lnk.offer(packet(0.0, 1))
    lnk.configure(LinkSpec(rate=0), now=0.001)  # blocked while the packet is queued
    out: list[Released] = []
    lnk.advance(5.0, out)
    assert out == [] and lnk.stats().queue_packets == 1  # held, not lost
    lnk.configure(LinkSpec(rate=1_000_000), now=5.0)
    lnk.advance(5.0, out)
    assert out == []  # it starts serialising at 5.0, not in the past
    lnk.advance(5.0 + 0.0082, out)
    assert len(out) == 1 and out[0][0] == pytest.approx(5.0 + (L2 + 24) * 8 / 1e6)


def test_independent_loss_is_binomial() -> None:
    n, p = 20_000, 0.05
    lnk = link(seed=7, loss=p)
    feed(lnk, n, 1e-5)
    assert lnk.drop_queue_full == 0
    low, high = binomial_interval(n, p)
    assert low <= lnk.drop_loss <= high
    assert lnk.packets_out == n - lnk.drop_loss


def test_non_ip_frames_are_exempt_from_loss() -> None:
    lnk = link(loss=1.0)
    lnk.offer(packet(0.0, droppable=False))
    out: list[Released] = []
    lnk.advance(0.01, out)
    assert len(out) == 1


def test_gilbert_elliott_mean_loss_and_burst_length() -> None:
    n = 200_000
    burst = {"p_enter": 0.01, "p_exit": 0.25}
    lnk = link(seed=3, burst_loss=burst)
    lost: list[bool] = []
    for i in range(n):
        before = lnk.drop_loss
        lnk.offer(packet(i * 1e-5))
        lnk.advance(i * 1e-5 + 1e-6, [])
        lost.append(lnk.drop_loss > before)
    mean = sum(lost) / n
    expected = 0.01 / (0.01 + 0.25)
    assert mean == pytest.approx(expected, rel=0.1)
    bursts = [len(run_) for run_ in "".join("x" if x else " " for x in lost).split() if run_]
    assert statistics.mean(bursts) == pytest.approx(1 / 0.25, rel=0.1)
    # Independent loss at the same mean would give bursts of ~1.04 packets.
    assert statistics.mean(bursts) > 3


def test_latency_is_exact() -> None:
    lnk = link(latency=40)
    out = run(lnk, [0.0, 0.010, 0.020], until=0.1, step=1e-5)
    # The default rate is unlimited: no serialiser, so nothing but the latency.
    assert [t for t, _ in out] == pytest.approx([0.040, 0.050, 0.060], abs=1e-9)
    limited = run(link(latency=40, rate=1e9), [0.0, 0.010, 0.020], until=0.1, step=1e-5)
    tx = (L2 + FRAMING_OVERHEAD) * 8 / 1e9
    assert [t for t, _ in limited] == pytest.approx([0.040 + tx, 0.050 + tx, 0.060 + tx], abs=1e-9)


def test_an_unlimited_rate_never_queues_so_its_queue_limit_never_drops() -> None:
    """No serialiser, no queue: a burst offered before time moves on is all in flight, however
    small the queue limit, and leaves after the latency in order."""
    lnk = link(latency=5, queue={"packets": 1})
    for tag in range(20):
        lnk.offer(packet(0.0, tag))
    out: list[Released] = []
    lnk.advance(0.01, out)
    assert [int.from_bytes(copy_of(frame), "big") for _, _, frame in out] == list(range(20))
    assert [t for t, _, _ in out] == pytest.approx([0.005] * 20)
    assert lnk.drop_queue_full == 0 and lnk.stats().queue_packets == 0


def _jitter_delays(distribution: str, n: int = 20_000, strength: float = 1.0) -> list[float]:
    lnk = link(
        seed=11,
        latency=10,
        jitter=20,
        jitter_distribution=distribution,
        jitter_strength=strength,
        reorder_packets=True,
    )
    out = feed(lnk, n, 1e-3)
    assert len(out) == n
    # The default rate is unlimited: the extra delay is the jitter alone.
    return [(t - int.from_bytes(copy_of(f), "big") * 1e-3 - 0.010) * 1000 for t, _, f in out]


def test_uniform_jitter() -> None:
    extra = _jitter_delays("uniform")
    assert min(extra) >= -1e-6 and max(extra) <= 20 + 1e-6
    assert statistics.mean(extra) == pytest.approx(10, abs=0.3)
    assert statistics.pstdev(extra) == pytest.approx(20 / math.sqrt(12), rel=0.05)


def test_normal_jitter() -> None:
    extra = _jitter_delays("normal")
    assert min(extra) >= -1e-6 and max(extra) <= 20 + 1e-6
    assert statistics.mean(extra) == pytest.approx(10, abs=0.2)
    assert statistics.pstdev(extra) == pytest.approx(20 / 6, rel=0.05)


def test_pareto_jitter_is_heavy_tailed_and_capped() -> None:
    extra = _jitter_delays("pareto")
    assert min(extra) >= -1e-6 and max(extra) <= PARETO_CAP * 20 + 1e-6
    assert statistics.median(extra) < 0.5 * statistics.mean(extra) + 5  # skewed right
    assert statistics.mean(extra) == pytest.approx(10, rel=0.15)
    assert max(extra) > 5 * 20 * 0.5  # a tail far beyond the uniform's bound


def test_jitter_strength_is_the_share_of_packets_delayed() -> None:
    extra = _jitter_delays("uniform", n=10_000, strength=0.3)
    delayed = sum(1 for e in extra if e > 1e-6)
    low, high = binomial_interval(10_000, 0.3)
    assert low <= delayed <= high


def test_without_reorder_jitter_keeps_order() -> None:
    lnk = link(seed=5, jitter=50, reorder_packets=False)
    out = run(lnk, [i * 1e-3 for i in range(200)], until=1.0)
    tags = [tag for _, tag in out]
    assert tags == sorted(tags) and len(tags) == 200


def test_with_reorder_jitter_reorders() -> None:
    lnk = link(seed=5, jitter=50, reorder_packets=True)
    out = run(lnk, [i * 1e-3 for i in range(200)], until=1.0)
    tags = [tag for _, tag in out]
    assert sorted(tags) == list(range(200))
    assert tags != sorted(tags)


def test_reconfigure_keeps_queue_and_order() -> None:
    lnk = link(rate=1_000_000, latency=100)
    for i in range(10):
        lnk.offer(packet(0.0, i))
    out: list[Released] = []
    lnk.advance(0.03, out)  # three packets serialised, now in flight for 100 ms
    lnk.configure(LinkSpec(rate=2_000_000, latency=0), now=0.03)
    lnk.advance(10.0, out)
    tags = [int.from_bytes(copy_of(f), "big") for _, _, f in out]
    assert tags == list(range(10))
    assert lnk.drop_queue_full == lnk.drop_loss == 0


def test_a_packet_offered_late_meets_the_queue_it_arrived_at() -> None:
    """A worker holding packets reads new frames late (at its next release), stamped with
    their arrival: offered then, each must be queued, dropped and timed exactly as if it
    had been offered when it arrived. 1 Mbit/s serialises a frame in 8.192 ms; with a
    3-packet queue, a burst of 6 and then spaced packets drop some and keep others."""
    arrivals = [0.0, 0.001, 0.002, 0.003, 0.004, 0.005, 0.030, 0.031, 0.060]
    fields: dict[str, Any] = {"rate": 1_000_000, "latency": 20, "queue": {"packets": 3}}
    on_time = run(link(**fields), arrivals, until=0.3)
    late = link(**fields)
    out: list[Released] = []
    for tag, at in enumerate(arrivals):  # all offered at 0.065 s, after the last arrival
        late.offer(packet(at, tag))
    now = 0.065
    while now <= 0.3:
        late.advance(now, out)
        now += 1e-4
    released = [(t, int.from_bytes(copy_of(frame), "big")) for t, _, frame in out]
    assert [tag for _, tag in released] == [tag for _, tag in on_time]
    assert len(on_time) < len(arrivals)  # the queue did drop: the test says something
    for (late_at, _), (on_time_at, _) in zip(released, on_time, strict=True):
        assert late_at == pytest.approx(on_time_at, abs=1e-9)
    assert late.drop_queue_full == len(arrivals) - len(on_time)


def test_least_delay_is_the_latency_and_a_blocked_link_holds_nothing() -> None:
    assert link(latency=20, jitter=5).least_delay == pytest.approx(0.020)
    assert link(rate=1_000_000).least_delay == 0.0
    assert link(rate=0, latency=20).least_delay == math.inf


def held_run(first: float, last: float, start: int, stop: int, token: object = None) -> HeldRun:
    frames = stop - start
    return HeldRun(token, start, stop, first, last, frames, frames * L2, frames * 2000)


def test_runs_held_in_bulk_leave_when_their_last_frame_is_due_in_order_with_packets() -> None:
    lnk = link(latency=10)
    assert lnk.delay_only
    out: list[tuple[float, int, bytes | HeldRun]] = []
    lnk.offer(packet(0.000, 1))  # due 0.010
    lnk.hold_runs([held_run(0.001, 0.0012, 0, 3), held_run(0.002, 0.002, 3, 4)])
    lnk.offer(packet(0.0015, 2))  # due 0.0115, but after the runs: never overtakes them
    assert lnk.next_event() == pytest.approx(0.010)
    lnk.advance(0.0111, out)
    assert [item[2] for item in out] == [(1).to_bytes(4, "big")]
    due = not_before(0.0012, 0.010)  # 0.0112 exactly, rounded up (the float 0.0112 is below)
    assert lnk.next_event() == due
    lnk.advance(due, out)
    assert isinstance(out[-1][2], HeldRun) and out[-1][2].stop == 3
    assert out[-1][0] == due
    lnk.advance(0.1, out)
    assert [item[2].start if isinstance(item[2], HeldRun) else "packet" for item in out[2:]] == [
        3,
        "packet",
    ]
    assert [item[0] for item in out] == sorted(item[0] for item in out)
    stats = lnk.stats()
    assert stats.packets_in == stats.packets_out == 6
    assert stats.in_flight == 0 and stats.held_bytes == 0


def test_held_runs_count_as_in_flight_and_held_and_a_flush_drops_them() -> None:
    lnk = link(latency=50)
    lnk.hold_runs([held_run(0.0, 0.0, 0, 5)])
    stats = lnk.stats()
    assert (stats.in_flight, stats.held_bytes, stats.packets_in) == (5, 5 * 2000, 5)
    assert not lnk.idle
    assert lnk.flush() == 5
    assert lnk.idle and lnk.stats().held_bytes == 0 and lnk.stats().drops.flushed == 5
    out: list[tuple[float, int, bytes | HeldRun]] = []
    lnk.advance(1.0, out)
    assert out == []


def test_a_shorter_latency_does_not_let_later_runs_overtake_earlier_ones() -> None:
    lnk = link(latency=100)
    lnk.hold_runs([held_run(0.0, 0.0, 0, 1, "first")])
    lnk.configure(LinkSpec(latency=1), now=0.001)
    lnk.hold_runs([held_run(0.001, 0.001, 0, 1, "second")])
    out: list[tuple[float, int, bytes | HeldRun]] = []
    lnk.advance(0.05, out)
    assert out == []  # the second waits for the first
    lnk.advance(0.1, out)
    assert [item[2].batch for item in out if isinstance(item[2], HeldRun)] == ["first", "second"]


def test_held_bytes_limits_say_whether_a_batch_fits() -> None:
    lnk = link(latency=10, queue={"held_bytes": 10_000})
    assert lnk.can_hold(10_000) and not lnk.can_hold(10_001)
    lnk.hold_runs([held_run(0.0, 0.0, 0, 4)])  # 8000 held
    assert lnk.can_hold(2000) and not lnk.can_hold(2001)


def test_only_a_link_that_does_nothing_but_delay_is_delay_only() -> None:
    assert link(latency=10).delay_only
    for fields in ({}, {"latency": 10, "jitter": 2}, {"latency": 10, "rate": "10mbit"},
                   {"latency": 10, "loss": 0.01}, {"latency": 10, "duplicate": 0.01},
                   {"latency": 10, "queue": {"discipline": "codel"}}):  # fmt: skip
        assert not link(**fields).delay_only, fields


def test_the_next_event_is_when_the_queue_head_can_leave_not_when_it_is_serialised() -> None:
    # 1 Mbit/s: a 1000-byte packet (1024 with framing) takes 8.192 ms; then 10 ms of latency.
    lnk = link(rate=1_000_000, latency=10)
    lnk.offer(packet(0.0, 1))
    lnk.offer(packet(0.0, 2))
    assert lnk.next_event() == pytest.approx(0.008192 + 0.010)
    out: list[Released] = []
    lnk.advance(0.018192, out)  # both serialised by now, exactly, the first due
    assert [copy_of(f) for _, _, f in out] == [(1).to_bytes(4, "big")]
    assert out[0][0] == pytest.approx(0.018192)
    assert lnk.next_event() == pytest.approx(2 * 0.008192 + 0.010)
