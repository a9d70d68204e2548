"""One impaired link in one direction: queue and rate, then loss, then latency and jitter.

Pure code: time is a number handed in by the caller, randomness comes from the `Random` it
is given and a trace comes parsed, so the same inputs always give the same outputs, and unit
tests run in virtual time. Re-configuring a link keeps its queue, the packets in flight and
the rate limiter's clock, so a change never loses or reorders what is already inside.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass

from engine.core.fates import FateLog
from engine.model.fates import (
    BLOCKED,
    BURST_LOSS,
    FLUSHED,
    FORWARDED,
    HELD_FULL,
    LOSS,
    MALFORMED,
    QUEUE_FULL,
)
from engine.model.spec import FRAMING_OVERHEAD, UNLIMITED_RATE, LinkSpec
from engine.model.stats import Drops, LinkStats
from engine.model.trace import Trace, TraceClock

#: What a held packet costs beyond its frame's bytes (its Packet, heap entry, bytes header),
#: counted against `queue.held_bytes` and the direction's HeldBudget.
PACKET_OVERHEAD = 200

#: Pareto jitter is heavy-tailed; draws are capped at this many times `jitter`.
PARETO_CAP = 10.0
PARETO_SHAPE = 3.0


@dataclass(slots=True)
class Packet:
    """A frame (vnet header included) and what it weighs on the wire."""

    frame: bytes
    arrival: float
    wire_packets: int = 1
    l2_bytes: int = 0
    droppable: bool = True
    #: When the serialiser finished it (for a capture's "queued" share of its delay).
    serialised: float = 0.0

    @property
    def wire_bits(self) -> int:
        return (self.l2_bytes + FRAMING_OVERHEAD * self.wire_packets) * 8


class HeldBudget:
    """Bytes held for delay by all links of one direction, against one limit: the memory
    bound of a worker however many flow links there are."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class DelaySamples:
    """How long the frames released since the last `take` spent in the links of one direction
    (queue, serialisation, latency and jitter, and however late the release came), for the
    measured-delay figures. The first LIMIT of each window are kept: a bound on memory and
    on the cost per frame, and at ten windows a second exact up to 40 000 frames a second."""

    LIMIT = 4096

    def __init__(self) -> None:
        self.values: list[float] = []

    def take(self) -> list[float]:
        """The delays (seconds) since the last call, sorted; the window starts again."""
        values, self.values = self.values, []
        values.sort()
        return values


class Link:
    """A link's state machine. `offer` takes packets in; `advance` lets time pass and hands
    out the frames whose time has come, with their release time. A link that follows a trace
    is handed it parsed (`trace`, for `spec.trace`): reading files is the caller's business."""

    def __init__(
        self,
        spec: LinkSpec,
        rng: random.Random,
        now: float,
        budget: HeldBudget | None = None,
        trace: Trace | None = None,
        delays: DelaySamples | None = None,
    ) -> None:
        self._rng = rng
        self._budget = budget if budget is not None else HeldBudget(1 << 62)
        self._delays = delays if delays is not None else DelaySamples()
        self._held_bytes = 0
        self._queue: deque[Packet] = deque()
        self._queue_bits = 0
        self._queue_bytes = 0
        self._queue_packets = 0
        self._free_at = now  # when the serialiser finished its last packet
        self._in_flight: list[tuple[float, int, Packet]] = []
        self._sequence = 0
        self._last_release = float("-inf")
        self._in_burst = False
        self.packets_in = 0
        self.bytes_in = 0
        self.packets_out = 0
        self.bytes_out = 0
        self.drop_loss = 0
        self.drop_queue_full = 0
        self.drop_blocked = 0
        self.drop_held_full = 0
        self.drop_flushed = 0
        self.drop_malformed = 0
        self.spec = spec
        self._stats: LinkStats | None = None
        self._stats_state: tuple[float, ...] = ()
        self._trace: TraceClock | None = None
        #: While a capture runs, where each frame's fate is noted (see fates.py), and the
        #: link's label for the records.
        self.fates: FateLog | None = None
        self.label = "default"
        self._apply(spec, now, trace)

    def _apply(self, spec: LinkSpec, now: float, trace: Trace | None) -> None:
        self.spec = spec
        self._rate = float(spec.rate)
        self._set_trace(trace if spec.trace is not None else None, now)
        self._loss = spec.loss
        self._latency = spec.latency / 1000.0
        self._jitter = spec.jitter / 1000.0 if spec.jitter_strength > 0 else 0.0
        self._strength = spec.jitter_strength
        self._reorder = spec.reorder_packets
        self._distribution = spec.jitter_distribution
        self._burst = spec.burst_loss
        self._lossy = self._loss > 0 or self._burst is not None
        self._held_limit = spec.queue.held_bytes
        self._limit_packets = spec.queue.packets
        self._limit_bytes = spec.queue.bytes
        self._limit_bits_of_time = (
            None if spec.queue.ms is None else spec.queue.ms / 1000.0 * self._rate
        )
        self.needs_wire_packets = spec.needs_wire_packets
        # "Unlimited" means no serialiser at all: at 10 Gbit/s a 64 KiB super-frame would
        # otherwise wait 52 µs and cost the forwarder an extra wake-up for nothing.
        self._unlimited = self._rate >= UNLIMITED_RATE and self._trace is None
        #: The least time a frame offered now spends in the link, unless dropped: its latency
        #: (jitter only adds); a blocked link drops every frame, so it holds none back.
        self.least_delay = self._latency if self._rate > 0 else float("inf")
        self.transparent = (
            self._unlimited
            and self._loss == 0
            and self._burst is None
            and self._latency == 0
            and self._jitter == 0
        )

    def _set_trace(self, trace: Trace | None, now: float) -> None:
        """Follow a trace from `now` on (kept as it is if the same trace stays in force). None
        while the spec names one means it could not be read after the spec was checked (the
        file went away): the rate stands."""
        if trace is None:
            self._trace = None
            return
        if self._trace is None or self._trace.trace != trace:
            self._trace = TraceClock(trace, now)
        if self._rate > 0:
            self._rate = trace.average_bps  # for the queue's time limit and delay figures

    def configure(self, spec: LinkSpec, now: float, trace: Trace | None = None) -> None:
        """Take new settings (with the trace `spec.trace` names, parsed: see `Link`); queued
        and in-flight packets stay where they are."""
        if self._rate == 0 and spec.rate > 0:
            self._free_at = max(self._free_at, now)  # a blocked link starts sending now
        self._apply(spec, now, trace)

    def would_drop(self, packet: Packet) -> bool:
        """Whether `offer` would tail-drop this packet: for a super-frame, the sign that it
        must be cut up so that the queue takes what fits, wire packet by wire packet. Judged
        on the queue as the packet found it on arrival, however late it comes (a worker reads
        frames late while it holds others: their arrival times are the kernel's stamps)."""
        if not self._queue:
            return False
        if self._rate > 0:
            self._serialise(packet.arrival)
        return bool(self._queue) and self._over_limit(packet)

    @property
    def idle(self) -> bool:
        return not self._queue and not self._in_flight

    def pass_through(self, wire_packets: int, l2_bytes: int) -> None:
        """Count a packet that left at once: what `offer` and `advance` would have done with it
        on a transparent, idle link, without holding a copy."""
        self.packets_in += wire_packets
        self.bytes_in += l2_bytes
        self.packets_out += wire_packets
        self.bytes_out += l2_bytes

    def refuse_malformed(self, wire_packets: int, l2_bytes: int, frame: bytes = b"",
                         now: float = 0.0) -> None:  # fmt: skip
        """Count a frame dropped whole for being malformed (see frames.plausible_gso)."""
        self.packets_in += wire_packets
        self.bytes_in += l2_bytes
        self.drop_malformed += wire_packets
        if self.fates is not None:
            self.fates.note(frame, now, MALFORMED, self.label)

    def flush(self) -> int:
        """Drop everything the link holds, queued and delayed (`linkshaper flush`); the count
        of wire packets dropped. Settings and clocks stay."""
        dropped = self._queue_packets + sum(p.wire_packets for _, _, p in self._in_flight)
        if self.fates is not None:
            for packet in [*self._queue, *(p for _, _, p in sorted(self._in_flight))]:
                self.fates.note(packet.frame, packet.arrival, FLUSHED, self.label)
        self._queue.clear()
        self._queue_bits = self._queue_bytes = self._queue_packets = 0
        self._in_flight.clear()
        self._budget.used -= self._held_bytes
        self._held_bytes = 0
        self._last_release = float("-inf")
        self.drop_flushed += dropped
        return dropped

    def offer(self, packet: Packet) -> None:
        self.packets_in += packet.wire_packets
        self.bytes_in += packet.l2_bytes
        if self._rate <= 0:
            self.drop_blocked += packet.wire_packets
            if self.fates is not None:
                self.fates.note(packet.frame, packet.arrival, BLOCKED, self.label)
            return
        if self._unlimited and not self._queue:
            # No serialiser: the packet is through it on arrival, as `advance` would find.
            start = packet.arrival if packet.arrival > self._free_at else self._free_at
            self._free_at = start
            self._after_serialisation(packet, start)
            return
        if self.would_drop(packet):
            self.drop_queue_full += packet.wire_packets
            if self.fates is not None:
                self.fates.note(packet.frame, packet.arrival, QUEUE_FULL, self.label)
            return
        self._queue.append(packet)
        self._queue_bits += packet.wire_bits
        self._queue_bytes += packet.l2_bytes
        self._queue_packets += packet.wire_packets

    def _over_limit(self, packet: Packet) -> bool:
        packets, size, bits = self._limit_packets, self._limit_bytes, self._limit_bits_of_time
        return (
            (packets is not None and self._queue_packets + packet.wire_packets > packets)
            or (size is not None and self._queue_bytes + packet.l2_bytes > size)
            or (bits is not None and self._queue_bits + packet.wire_bits > bits)
        )

    def advance(self, now: float, out: list[tuple[float, int, bytes]]) -> None:
        """Serialise what the rate allows up to `now`, then release what is due."""
        if self._queue and self._rate > 0:
            self._serialise(now)
        in_flight = self._in_flight
        if in_flight and in_flight[0][0] <= now:
            released = 0
            delays = self._delays.values
            room = DelaySamples.LIMIT - len(delays)
            fates = self.fates
            while in_flight and in_flight[0][0] <= now:
                release, sequence, packet = heapq.heappop(in_flight)
                self.packets_out += packet.wire_packets
                self.bytes_out += packet.l2_bytes
                released += len(packet.frame) + PACKET_OVERHEAD
                out.append((release, sequence, packet.frame))
                if fates is not None:  # the delay it got: until it left, now
                    arrival = packet.arrival
                    fates.note(packet.frame, arrival, FORWARDED, self.label, now - arrival,
                               packet.serialised - arrival)  # fmt: skip
                if room > 0:
                    delays.append(now - packet.arrival)
                    room -= 1
            self._held_bytes -= released
            self._budget.used -= released

    def _serialise(self, now: float) -> None:
        """Take through the rate limiter the queued packets it has finished by `now`."""
        queue = self._queue
        free_at = self._free_at
        rate = self._rate
        trace = self._trace
        while queue:
            head = queue[0]
            start = head.arrival if head.arrival > free_at else free_at
            bits = head.wire_bits
            if self._unlimited:
                finish = start
            elif trace is None:
                finish = start + bits / rate
            else:
                finish, index, left = trace.finish(start, head.l2_bytes, head.wire_packets)
            if finish > now:
                break
            if trace is not None:
                trace.commit(index, left)
            queue.popleft()
            self._queue_bits -= bits
            self._queue_bytes -= head.l2_bytes
            self._queue_packets -= head.wire_packets
            free_at = finish
            self._after_serialisation(head, finish)
        self._free_at = free_at

    def _after_serialisation(self, packet: Packet, now: float) -> None:
        packet.serialised = now
        if packet.droppable and self._lossy and self._is_lost():
            self.drop_loss += packet.wire_packets
            if self.fates is not None:
                cause = LOSS if self._burst is None else BURST_LOSS
                self.fates.note(packet.frame, packet.arrival, cause, self.label)
            return
        size = len(packet.frame) + PACKET_OVERHEAD
        budget = self._budget
        if self._held_bytes + size > self._held_limit or budget.used + size > budget.limit:
            self.drop_held_full += packet.wire_packets
            if self.fates is not None:
                self.fates.note(packet.frame, packet.arrival, HELD_FULL, self.label)
            return
        self._held_bytes += size
        budget.used += size
        release = now + self._latency
        if self._jitter > 0 and (self._strength >= 1.0 or self._rng.random() < self._strength):
            release += self._jitter_draw()
        if not self._reorder:
            if release < self._last_release:
                release = self._last_release
            self._last_release = release
        self._sequence += 1
        heapq.heappush(self._in_flight, (release, self._sequence, packet))

    def _is_lost(self) -> bool:
        rng = self._rng
        burst = self._burst
        if burst is not None:
            if self._in_burst:
                if rng.random() < burst.p_exit:
                    self._in_burst = False
            elif rng.random() < burst.p_enter:
                self._in_burst = True
            p = burst.loss_in_burst if self._in_burst else burst.loss_outside
            if p > 0 and rng.random() < p:
                return True
        return self._loss > 0 and rng.random() < self._loss

    def _jitter_draw(self) -> float:
        """Extra delay in seconds, never negative; every distribution has mean jitter/2."""
        jitter = self._jitter
        rng = self._rng
        if self._distribution == "uniform":
            return rng.random() * jitter
        if self._distribution == "normal":
            while True:  # normal(mean J/2, sd J/6) truncated to [0, J]
                value = rng.gauss(jitter / 2, jitter / 6)
                if 0.0 <= value <= jitter:
                    return value
        # Lomax (Pareto II) with shape 3: mean J/2, heavy tail, capped.
        return min((rng.paretovariate(PARETO_SHAPE) - 1.0) * jitter, PARETO_CAP * jitter)

    def next_event(self) -> float | None:
        """The earliest time at which `advance` would have something to do."""
        in_flight = self._in_flight
        due = in_flight[0][0] if in_flight else None
        if self._queue and self._rate > 0:
            head = self._queue[0]
            start = max(head.arrival, self._free_at)
            if self._unlimited:
                finish = start
            elif self._trace is None:
                finish = start + head.wire_bits / self._rate
            else:
                finish = self._trace.finish(start, head.l2_bytes, head.wire_packets)[0]
            if due is None or finish < due:
                return finish
        return due

    def stats(self) -> LinkStats:
        """The link's counters; the same object as last time while nothing changed, so that
        thousands of idle flow links cost a tuple each per report."""
        state = (
            self.packets_in,
            self.packets_out,
            self.bytes_out,
            self.drop_loss,
            self.drop_queue_full,
            self.drop_held_full,
            self.drop_flushed,
            self._queue_packets,
            self._queue_bits,
            len(self._in_flight),
            self._rate,
        )
        if state != self._stats_state or self._stats is None:
            self._stats_state = state
            self._stats = self._build_stats()
        return self._stats

    def _build_stats(self) -> LinkStats:
        delay = self._queue_bits / self._rate * 1000.0 if self._rate > 0 else 0.0
        return LinkStats(
            packets_in=self.packets_in,
            bytes_in=self.bytes_in,
            packets_out=self.packets_out,
            bytes_out=self.bytes_out,
            drops=Drops(
                loss=self.drop_loss,
                queue_full=self.drop_queue_full,
                blocked=self.drop_blocked,
                held_full=self.drop_held_full,
                flushed=self.drop_flushed,
                malformed=self.drop_malformed,
            ),
            queue_packets=self._queue_packets,
            queue_bytes=self._queue_bytes,
            queue_delay_ms=delay,
            in_flight=len(self._in_flight),
            held_bytes=self._held_bytes,
        )
