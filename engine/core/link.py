"""One impaired link in one direction: outage, duplication, the queue (its discipline) and the
rate, then loss, corruption, reordering, latency and jitter, then delivery slots.

Pure code: time is a number handed in by the caller, randomness comes from the `Random` it
is given and a trace comes parsed, so the same inputs always give the same outputs, and unit
tests run in virtual time. Re-configuring a link keeps its queue, the packets in flight and
the rate limiter's clock, so a change never loses or reorders what is already inside.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from statistics import NormalDist

from engine.core.correlated import CorrelatedEvent, CorrelatedUniform
from engine.core.corruption import corrupt
from engine.core.deadlines import NO_SPAN, exact_span, not_before
from engine.core.disciplines import Discipline, make_discipline
from engine.core.ecn import mark_packet
from engine.core.fates import FateLog
from engine.core.outages import OutageClock
from engine.core.packet import HeldRun, Packet
from engine.core.slots import SlotGate
from engine.model.fates import (
    AQM,
    BLOCKED,
    BURST_LOSS,
    FLUSHED,
    FORWARDED,
    HELD_FULL,
    LOSS,
    MALFORMED,
    OUTAGE,
    QUEUE_FULL,
)
from engine.model.spec import FRAMING_OVERHEAD, UNLIMITED_RATE, LinkSpec
from engine.model.stats import Drops, LinkStats
from engine.model.trace import Trace, TraceClock

#: What a held packet costs beyond its frame's bytes (its Packet, heap entry, bytes header),
#: counted against `queue.held_bytes` and the direction's HeldBudget.
PACKET_OVERHEAD = 200

#: Behind an AQM, a super-frame that takes longer than this to serialise is cut into wire
#: packets (as CAKE splits GSO packets): at 20 Mbit/s a 64 KiB one would hold a sparse flow
#: for 26 ms, while at 1 Gbit/s it takes half a millisecond and cutting it would cost half
#: the throughput (bench.aqm_cost).
SPLIT_ABOVE_SECONDS = 0.001

#: Pareto jitter is heavy-tailed; draws are capped at this many times `jitter`.
PARETO_CAP = 10.0
PARETO_SHAPE = 3.0
_STANDARD_NORMAL = NormalDist()

#: What `Link.advance` hands out: release time, sequence, and a copy of a frame or a run of
#: frames held in bulk (see `Link.hold_runs`).
Released = tuple[float, int, bytes | HeldRun]

__all__ = ["DelaySamples", "HeldBudget", "HeldRun", "Link", "Packet", "Released"]


def _event(p: float, c: float, rng: random.Random, old: CorrelatedEvent | None
           ) -> CorrelatedEvent | None:  # fmt: skip
    """A correlated event process when `c` is set (its state kept across changes), else None:
    a plain draw per packet, as before correlations existed."""
    if c <= 0 or p <= 0:
        return None
    if old is None:
        return CorrelatedEvent(p, c, rng)
    old.configure(p, c)
    return old


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
    is handed it parsed (`trace`, for `spec.trace`): reading files is the caller's business.

    The queue is a FIFO kept here (tail or head drop) or an AQM (engine/core/disciplines).
    With an AQM or an outage, the serialiser takes a packet out of the queue when it starts
    on it (`_in_service`, the AQM decides then) instead of when it has finished it."""

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
        self._aqm: Discipline | None = None
        self._in_service: Packet | None = None
        self._service_finish = 0.0
        #: Everything queued, the packet in service included (the limits' and stats' view).
        self._queue_bits = 0
        self._queue_bytes = 0
        self._queue_packets = 0
        self._free_at = now  # when the serialiser finished its last packet
        self._in_flight: list[tuple[float, int, Packet]] = []
        #: Runs of frames held in bulk (`hold_runs`), in release order: (due, sequence, run).
        self._line: deque[tuple[float, int, HeldRun]] = deque()
        self._line_frames = 0
        self._sequence = 0
        self._last_release = float("-inf")
        self._in_burst = False
        self._markov_state = 1
        self._loss_event: CorrelatedEvent | None = None
        self._duplicate_event: CorrelatedEvent | None = None
        self._corrupt_event: CorrelatedEvent | None = None
        self._reorder_event: CorrelatedEvent | None = None
        self._jitter_uniform: CorrelatedUniform | None = None
        self._gap_count = 0
        self._slots: SlotGate | None = None
        self._outage: OutageClock | None = None
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
        self.drop_aqm = 0
        self.drop_outage = 0
        self.ecn_marked = 0
        self.duplicated = 0
        self.corrupted = 0
        self.reordered = 0
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
        rng = self._rng
        self._rate = float(spec.rate)
        self._set_trace(trace if spec.trace is not None else None, now)
        self._loss = spec.loss
        self._latency = spec.latency / 1000.0
        #: (low, high, step): for times from low to below high, time + step is the deadline
        #: exactly (the latency rounded up in the clock's binade, see `_due`); found anew at
        #: the next frame.
        self._floor_span = NO_SPAN
        self._jitter = spec.jitter / 1000.0 if spec.jitter_strength > 0 else 0.0
        self._strength = spec.jitter_strength
        self._reorder = spec.reorder_packets
        self._distribution = spec.jitter_distribution
        self._burst = spec.burst_loss
        self._markov = spec.markov_loss
        self._loss_ecn = spec.loss_ecn
        self._lossy = self._loss > 0 or self._burst is not None or self._markov is not None
        self._loss_event = _event(spec.loss, spec.loss_correlation, rng, self._loss_event)
        self._duplicate = spec.duplicate
        self._duplicate_event = _event(
            spec.duplicate, spec.duplicate_correlation, rng, self._duplicate_event
        )
        self._corrupt = spec.corrupt
        self._corrupt_event = _event(
            spec.corrupt, spec.corrupt_correlation, rng, self._corrupt_event
        )
        self._netem_reorder = spec.reorder
        self._reorder_event = _event(
            spec.reorder, spec.reorder_correlation, rng, self._reorder_event
        )
        self._gap = spec.gap
        if spec.jitter_correlation > 0:
            if self._jitter_uniform is None:
                self._jitter_uniform = CorrelatedUniform(spec.jitter_correlation, rng)
            self._jitter_uniform.configure(spec.jitter_correlation)
        else:
            self._jitter_uniform = None
        self._per_packet = self._corrupt > 0 or self._netem_reorder > 0
        self._set_slots(spec, now)
        self._set_outage(spec, now)
        self._set_discipline(spec)
        #: A plain FIFO serialiser: no AQM, no outage (see `_managed`).
        self._fifo = self._aqm is None and self._outage is None
        self._head_drop = spec.queue.discipline == "head_drop"
        self._accounting = (
            None
            if spec.overhead is None and spec.cell_size is None
            else (
                FRAMING_OVERHEAD if spec.overhead is None else spec.overhead,
                spec.cell_size,
                spec.cell_overhead,
            )
        )
        self._held_limit = spec.queue.held_bytes
        self._limit_packets = spec.queue.packets
        self._limit_bytes = spec.queue.bytes
        self._limit_bits_of_time = (
            None if spec.queue.ms is None else spec.queue.ms / 1000.0 * self._rate
        )
        self.needs_wire_packets = spec.needs_wire_packets
        #: Super-frames of more L2 bytes than this are cut up (see SPLIT_ABOVE_SECONDS).
        self.split_above = (
            max(2 * 1514, self._rate * SPLIT_ABOVE_SECONDS / 8)
            if self._aqm is not None and self._rate > 0
            else float("inf")
        )
        # "Unlimited" means no serialiser at all: at 10 Gbit/s a 64 KiB super-frame would
        # otherwise wait 52 µs and cost the forwarder an extra wake-up for nothing.
        self._unlimited = self._rate >= UNLIMITED_RATE and self._trace is None
        #: The least time a frame offered now spends in the link, unless dropped: its latency
        #: (jitter and slots only add; netem's reordering skips it); a blocked link drops every
        #: frame, so it holds none back.
        if self._rate <= 0:
            self.least_delay = float("inf")
        else:
            self.least_delay = 0.0 if self._netem_reorder > 0 else self._latency
        self.transparent = spec.transparent and self._trace is None
        #: Nothing but the same latency for every packet, in order (`hold_runs` may be used).
        self.delay_only = spec.delay_only and self._trace is None and self._fifo

    def _set_slots(self, spec: LinkSpec, now: float) -> None:
        if spec.slot is None:
            self._slots = None
        elif self._slots is None:
            self._slots = SlotGate(spec.slot, self._rng, now)
        else:
            self._slots.configure(spec.slot)

    def _set_outage(self, spec: LinkSpec, now: float) -> None:
        """A new schedule starts from now; the same one stays in force."""
        if spec.outage is None:
            self._outage = None
        elif self._outage is None or self._outage.outage != spec.outage:
            self._outage = OutageClock(spec.outage, self._rng, now)

    def _set_discipline(self, spec: LinkSpec) -> None:
        """Keep the AQM (its state) if it stays the same kind; otherwise move what is queued,
        in arrival order, into the new queue without dropping any of it."""
        kind = spec.queue.discipline
        current = self._aqm
        if current is not None and current.kind == kind:
            current.configure(spec.queue)
            return
        if current is None and kind in ("tail_drop", "head_drop"):
            return  # a FIFO stays the FIFO it is
        queued = (
            list(self._queue)
            if current is None
            else sorted(current.packets(), key=lambda packet: packet.arrival)
        )
        new = make_discipline(spec.queue, self._rng)
        self._queue = deque()
        if new is None:
            self._queue.extend(queued)
        else:
            for packet in queued:
                new.adopt(packet)
        self._aqm = new

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

    @property
    def _managed(self) -> bool:
        """Whether the serialiser takes packets out when it starts on them (see `Link`)."""
        return self._in_service is not None or not self._fifo

    def would_drop(self, packet: Packet) -> bool:
        """Whether `offer` would drop a packet for the queue's limits (this one, or with head
        drop or fq_codel one queued): for a super-frame, the sign that it must be cut up so
        that the queue takes what fits, wire packet by wire packet. Judged on the queue as the
        packet found it on arrival, however late it comes (a worker reads frames late while
        it holds others: their arrival times are the kernel's stamps)."""
        if not self._queue_packets:
            return False
        if self._rate > 0:
            self._serialise(packet.arrival)
        if not packet.bits:
            packet.bits = self._bits(packet)
        return self._queue_packets > 0 and self._over_limit(packet)

    @property
    def idle(self) -> bool:
        return not self._queue_packets and not self._in_flight and not self._line

    def can_hold(self, held_bytes: int) -> bool:
        """Whether `held_bytes` more fit in the link's and the direction's held-bytes limits."""
        budget = self._budget
        return (
            self._held_bytes + held_bytes <= self._held_limit
            and budget.used + held_bytes <= budget.limit
        )

    def hold_runs(self, runs: list[HeldRun]) -> None:
        """Hold runs of frames that arrived on a `delay_only` link, in bulk (the caller checked
        `can_hold` for them all). Each is due `latency` after its last frame arrived, and never
        before anything this link took earlier, so nothing overtakes; `advance` hands it out
        as it is, for the caller to send from where it read the frames."""
        last = self._last_release
        line = self._line
        held = frames = packets = l2_bytes = 0
        low, high, step = self._floor_span
        for run in runs:
            arrival = run.last_arrival
            if low <= arrival < high:  # see `_due`
                due = arrival + step
            else:
                due = self._due(arrival)
                low, high, step = self._floor_span
            if due < last:
                due = last
            last = due
            self._sequence += 1
            line.append((due, self._sequence, run))
            held += run.held_bytes
            frames += run.stop - run.start
            packets += run.wire_packets
            l2_bytes += run.l2_bytes
        self._last_release = last
        self._line_frames += frames
        self.packets_in += packets
        self.bytes_in += l2_bytes
        self._held_bytes += held
        self._budget.used += held

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

    def _queued(self) -> list[Packet]:
        """Every packet queued, the one in service first."""
        waiting = list(self._queue) if self._aqm is None else list(self._aqm.packets())
        return waiting if self._in_service is None else [self._in_service, *waiting]

    def flush(self) -> int:
        """Drop everything the link holds, queued and delayed (`linkshaper flush`); the count
        of wire packets dropped. Settings and clocks stay."""
        dropped = self._queue_packets + sum(p.wire_packets for _, _, p in self._in_flight)
        dropped += sum(run.wire_packets for _, _, run in self._line)
        if self.fates is not None:
            for packet in [*self._queued(), *(p for _, _, p in sorted(self._in_flight))]:
                self.fates.note(packet.frame, packet.arrival, FLUSHED, self.label)
        self._queue.clear()
        if self._aqm is not None:
            self._aqm.clear()
        if self._in_service is not None:
            self._free_at = min(self._free_at, self._service_finish)
            self._in_service = None
        self._queue_bits = self._queue_bytes = self._queue_packets = 0
        self._in_flight.clear()
        self._line.clear()
        self._line_frames = 0
        self._budget.used -= self._held_bytes
        self._held_bytes = 0
        self._last_release = float("-inf")
        self.drop_flushed += dropped
        return dropped

    def _bits(self, packet: Packet) -> int:
        """What the rate limiter counts for a packet: Ethernet framing on each wire packet, or
        the spec's `overhead` and cells (each wire packet taken as the average of them)."""
        accounting = self._accounting
        if accounting is None:
            return (packet.l2_bytes + FRAMING_OVERHEAD * packet.wire_packets) * 8
        overhead, cell_size, cell_overhead = accounting
        count = packet.wire_packets
        length = max(1, -(-packet.l2_bytes // count) + overhead)
        if cell_size is not None:
            length = -(-length // cell_size) * (cell_size + cell_overhead)
        return length * count * 8

    def offer(self, packet: Packet) -> None:
        self.packets_in += packet.wire_packets
        self.bytes_in += packet.l2_bytes
        if self._rate <= 0:
            self.drop_blocked += packet.wire_packets
            if self.fates is not None:
                self.fates.note(packet.frame, packet.arrival, BLOCKED, self.label)
            return
        outage = self._outage
        if (
            outage is not None
            and outage.outage.mode == "blocked"
            and outage.down_until(packet.arrival) is not None
        ):
            self.drop_outage += packet.wire_packets
            if self.fates is not None:
                self.fates.note(packet.frame, packet.arrival, OUTAGE, self.label)
            return
        self._enqueue(packet)
        if self._duplicate > 0 and packet.droppable and self._duplicated_now():
            self.duplicated += packet.wire_packets
            copy = Packet(packet.frame, packet.arrival, packet.wire_packets, packet.l2_bytes)
            self._enqueue(copy)

    def _duplicated_now(self) -> bool:
        event = self._duplicate_event
        return event() if event is not None else self._rng.random() < self._duplicate

    def _enqueue(self, packet: Packet) -> None:
        if self._accounting is None:  # (inline: this runs for every packet)
            packet.bits = (packet.l2_bytes + FRAMING_OVERHEAD * packet.wire_packets) * 8
        else:
            packet.bits = self._bits(packet)
        if self._unlimited and not self._queue_packets and self._fifo:
            # No serialiser: the packet is through it on arrival, as `advance` would find.
            start = packet.arrival if packet.arrival > self._free_at else self._free_at
            self._free_at = start
            self._after_serialisation(packet, start)
            return
        if self.would_drop(packet) and not self._make_room(packet):
            self.drop_queue_full += packet.wire_packets
            if self.fates is not None:
                self.fates.note(packet.frame, packet.arrival, QUEUE_FULL, self.label)
            return
        self._queue_bits += packet.bits
        self._queue_bytes += packet.l2_bytes
        self._queue_packets += packet.wire_packets
        aqm = self._aqm
        if aqm is None:
            self._queue.append(packet)
        else:
            aqm.push(packet, packet.arrival, self._queue_delay())
            self._collect(aqm)

    def _make_room(self, packet: Packet) -> bool:
        """Drop queued packets so that `packet` fits: head drop takes the oldest, fq_codel the
        head of its fattest flow. False when the arrival is the one dropped (tail drop)."""
        if not self._head_drop and self._aqm is None:
            return False
        while self._queue_packets and self._over_limit(packet):
            if self._aqm is not None:
                victim = self._aqm.drop_for_room()
            else:
                victim = self._queue.popleft() if self._queue else None
            if victim is None:
                return False
            self._unqueue(victim)
            self.drop_queue_full += victim.wire_packets
            if self.fates is not None:
                self.fates.note(victim.frame, victim.arrival, QUEUE_FULL, self.label)
        return True

    def _unqueue(self, packet: Packet) -> None:
        self._queue_bits -= packet.bits
        self._queue_bytes -= packet.l2_bytes
        self._queue_packets -= packet.wire_packets

    def _collect(self, aqm: Discipline) -> None:
        """Count what the AQM dropped and marked in its last call."""
        if aqm.marked:
            self.ecn_marked += aqm.marked
            aqm.marked = 0
        if aqm.dropped:
            for victim in aqm.dropped:
                self._unqueue(victim)
                self.drop_aqm += victim.wire_packets
                if self.fates is not None:
                    self.fates.note(victim.frame, victim.arrival, AQM, self.label)
            aqm.dropped.clear()

    def _queue_delay(self) -> float:
        """How long what is queued takes to serialise, in seconds."""
        return self._queue_bits / self._rate if self._rate > 0 else 0.0

    def _over_limit(self, packet: Packet) -> bool:
        packets, size, bits = self._limit_packets, self._limit_bytes, self._limit_bits_of_time
        return (
            (packets is not None and self._queue_packets + packet.wire_packets > packets)
            or (size is not None and self._queue_bytes + packet.l2_bytes > size)
            or (bits is not None and self._queue_bits + packet.bits > bits)
        )

    def advance(self, now: float, out: list[Released], serialise: bool = True) -> None:
        """Serialise what the rate allows up to `now`, then release what is due. Without
        `serialise`, only what was through the serialiser already: for a caller with frames
        still unread that may have come before `now`, whose arrivals must meet the queue as it
        was then (see `would_drop`); it releases the rest once it has read them."""
        if serialise and self._queue_packets and self._rate > 0:
            self._serialise(now)
        if self._line and self._line[0][0] <= now:
            if self._in_flight and self._in_flight[0][0] <= now:  # both: in release order
                mark = len(out)
                self._release_line(now, out)
                self._release_due(now, out)
                out[mark:] = sorted(out[mark:], key=lambda item: (item[0], item[1]))
                return
            self._release_line(now, out)
        self._release_due(now, out)

    def _release_line(self, now: float, out: list[Released]) -> None:
        """Hand out the runs held in bulk that are due by `now` (see `hold_runs`). Their frames'
        delay samples take the run's middle arrival."""
        line = self._line
        delays = self._delays.values
        room = DelaySamples.LIMIT - len(delays)
        released = frames = packets = l2_bytes = 0
        while line and line[0][0] <= now:
            item = line.popleft()
            run = item[2]
            out.append(item)
            count = run.stop - run.start
            frames += count
            packets += run.wire_packets
            l2_bytes += run.l2_bytes
            released += run.held_bytes
            if room > 0:
                samples = min(room, count)
                delays.extend([now - (run.first_arrival + run.last_arrival) / 2] * samples)
                room -= samples
        self._line_frames -= frames
        self.packets_out += packets
        self.bytes_out += l2_bytes
        self._held_bytes -= released
        self._budget.used -= released

    def _release_due(self, now: float, out: list[Released]) -> None:
        """Hand out the packets in flight that are due by `now`."""
        in_flight = self._in_flight
        if not in_flight:
            return
        if self._slots is not None:
            self._release_in_slots(now, out)
        elif in_flight[0][0] <= now:
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

    def _release_in_slots(self, now: float, out: list[Released]) -> None:
        """`advance`'s release when deliveries are gathered into slots (see slots.py)."""
        slots = self._slots
        assert slots is not None
        in_flight = self._in_flight
        while in_flight:
            release = slots.release_time(in_flight[0][0])
            if release > now:
                break
            _, sequence, packet = heapq.heappop(in_flight)
            slots.sent(packet.wire_packets, packet.l2_bytes)
            self.packets_out += packet.wire_packets
            self.bytes_out += packet.l2_bytes
            size = len(packet.frame) + PACKET_OVERHEAD
            self._held_bytes -= size
            self._budget.used -= size
            out.append((release, sequence, packet.frame))
            delay = now - packet.arrival
            if self.fates is not None:
                queued = packet.serialised - packet.arrival
                self.fates.note(packet.frame, packet.arrival, FORWARDED, self.label, delay, queued)
            if len(self._delays.values) < DelaySamples.LIMIT:
                self._delays.values.append(delay)

    def _finish_time(self, start: float, packet: Packet, commit: bool) -> float:
        """When the serialiser, starting at `start`, has finished `packet`."""
        if self._unlimited:
            return start
        trace = self._trace
        if trace is None:
            return start + packet.bits / self._rate
        finish, index, left = trace.finish(start, packet.l2_bytes, packet.wire_packets)
        if commit:
            trace.commit(index, left)
        return finish if finish > start else start  # (a trace's times are rounded too)

    def _serialise(self, now: float) -> None:
        """Take through the rate limiter the queued packets it has finished by `now`."""
        if self._in_service is not None or not self._fifo:
            self._serialise_managed(now)
            return
        queue = self._queue
        free_at = self._free_at
        rate = self._rate
        trace = self._trace
        while queue:
            head = queue[0]
            start = head.arrival if head.arrival > free_at else free_at
            bits = head.bits
            if self._unlimited:
                finish = start
            elif trace is None:
                finish = start + bits / rate
            else:
                finish, index, left = trace.finish(start, head.l2_bytes, head.wire_packets)
                if finish < start:  # (a trace's times are rounded too)
                    finish = start
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

    def _next_start(self) -> float | None:
        """When the serialiser can start on the next queued packet (an outage holds it)."""
        aqm = self._aqm
        if aqm is not None:
            if not aqm:
                return None
            arrival = aqm.head_arrival()
        elif self._queue:
            arrival = self._queue[0].arrival
        else:
            return None
        start = arrival if arrival > self._free_at else self._free_at
        if self._outage is not None:
            back = self._outage.down_until(start)
            if back is not None and back > start:  # (never before it, however it rounds)
                start = back
        return start

    def _serialise_managed(self, now: float) -> None:
        """`_serialise` with an AQM or an outage: a packet leaves the queue when the
        serialiser starts on it, at which time the AQM decides (CoDel drops at dequeue)."""
        while True:
            packet = self._in_service
            if packet is None:
                start = self._next_start()
                if start is None or start > now:
                    return
                aqm = self._aqm
                if aqm is not None:
                    packet = aqm.pop(start, self._queue_delay())
                    self._collect(aqm)
                    if packet is None:
                        continue
                else:
                    packet = self._queue.popleft()
                self._in_service = packet
                self._service_finish = self._finish_time(start, packet, commit=True)
            finish = self._service_finish
            if finish > now:
                return
            self._in_service = None
            self._unqueue(packet)
            self._free_at = finish
            self._after_serialisation(packet, finish)

    def _after_serialisation(self, packet: Packet, now: float) -> None:
        packet.serialised = now
        if packet.droppable and self._lossy and self._is_lost() and not self._marked(packet):
            self.drop_loss += packet.wire_packets
            if self.fates is not None:
                random_only = self._burst is None and self._markov is None
                self.fates.note(packet.frame, packet.arrival, LOSS if random_only else BURST_LOSS,
                                self.label)  # fmt: skip
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
        self._sequence += 1
        if self._per_packet and self._netem_effects(packet):
            heapq.heappush(self._in_flight, (now, self._sequence, packet))  # overtakes
            return
        low, high, step = self._floor_span
        release = now + step if low <= now < high else self._due(now)  # (see `_due`)
        if self._jitter > 0 and (self._strength >= 1.0 or self._rng.random() < self._strength):
            release += self._jitter_draw()
        if not self._reorder:
            if release < self._last_release:
                release = self._last_release
            self._last_release = release
        heapq.heappush(self._in_flight, (release, self._sequence, packet))

    def _due(self, time: float) -> float:
        """`time` plus the latency, rounded up, not to nearest: a delay is a floor, whatever
        the clock reads (deadlines.py). Also keeps the span of times around `time` for which
        adding `_floor_span`'s step gives the same exactly, without this call."""
        self._floor_span = exact_span(time, self._latency)
        return not_before(time, self._latency)

    def _netem_effects(self, packet: Packet) -> bool:
        """Corrupt the packet if its turn comes; True if netem's reordering sends it now,
        past latency and jitter (every `gap`-th packet may, with probability `reorder`)."""
        rng = self._rng
        if self._corrupt > 0 and packet.droppable:
            event = self._corrupt_event
            if event() if event is not None else rng.random() < self._corrupt:
                packet.frame = corrupt(packet.frame, rng)
                self.corrupted += packet.wire_packets
        if self._netem_reorder <= 0:
            return False
        if self._gap_count < self._gap - 1:
            self._gap_count += 1
            return False
        event = self._reorder_event
        if event() if event is not None else rng.random() < self._netem_reorder:
            self._gap_count = 0
            self.reordered += packet.wire_packets
            return True
        self._gap_count += 1
        return False

    def _marked(self, packet: Packet) -> bool:
        """With `loss_ecn`, mark an ECN-capable packet that loss chose CE instead (netem's
        `loss ... ecn`); False means it is dropped."""
        if not self._loss_ecn or not mark_packet(packet):
            return False
        self.ecn_marked += packet.wire_packets
        return True

    def _markov_lost(self) -> bool:
        """One step of netem's four-state chain (see MarkovLoss): lost in states 3 and 4."""
        model = self._markov
        assert model is not None
        draw = self._rng.random()
        state = self._markov_state
        if state == 1:
            state = 3 if draw < model.p13 else 4 if draw < model.p13 + model.p14 else 1
        elif state == 2:
            state = 3 if draw < model.p23 else 2
        elif state == 3:
            leave = model.leave_burst
            state = 1 if draw < leave else 2 if draw < leave + model.p32 else 3
        else:
            state = 1
        self._markov_state = state
        return state >= 3

    def _is_lost(self) -> bool:
        rng = self._rng
        if self._markov is not None and self._markov_lost():
            return True
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
        if self._loss <= 0:
            return False
        event = self._loss_event
        return event() if event is not None else rng.random() < self._loss

    def _jitter_draw(self) -> float:
        """Extra delay in seconds, never negative; every distribution has mean jitter/2.
        With `jitter_correlation`, each draw comes from a correlated uniform (correlated.py)
        through the distribution's inverse CDF, so the distribution stays what it is."""
        jitter = self._jitter
        if self._jitter_uniform is not None:
            return self._correlated_jitter(self._jitter_uniform())
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

    def _correlated_jitter(self, u: float) -> float:
        jitter = self._jitter
        if self._distribution == "uniform":
            return u * jitter
        if self._distribution == "normal":
            low, high = _STANDARD_NORMAL.cdf(-3.0), _STANDARD_NORMAL.cdf(3.0)
            z = _STANDARD_NORMAL.inv_cdf(low + u * (high - low))
            return float(min(jitter, max(0.0, jitter / 2 + z * jitter / 6)))
        tail: float = (1.0 - u) ** (-1.0 / PARETO_SHAPE) - 1.0
        return min(tail * jitter, PARETO_CAP * jitter)

    def next_event(self) -> float | None:
        """The earliest time at which `advance` may hand something out. For what is still
        queued, that is when the head has been serialised, plus the latency: nobody needs the
        serialiser's own steps in between, since `advance` and `offer` (`would_drop`) work
        them out exactly, in time order, whenever they are called (a worker that woke for
        each would wake twice per packet)."""
        in_flight = self._in_flight
        due = in_flight[0][0] if in_flight else None
        if due is not None and self._slots is not None:
            due = self._slots.release_time(due)
        if self._line and (due is None or self._line[0][0] < due):
            due = self._line[0][0]
        if self._queue_packets and self._rate > 0:
            if self._managed:
                finish = (
                    self._service_finish if self._in_service is not None else self._next_start()
                )
            else:
                head = self._queue[0]
                start = max(head.arrival, self._free_at)
                finish = self._finish_time(start, head, commit=False)
            if finish is not None:
                if self._netem_reorder <= 0:  # a reordered packet skips the latency
                    finish = not_before(finish, self._latency)
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
            self.drop_aqm,
            self.drop_outage,
            self.ecn_marked,
            self.duplicated,
            self.corrupted,
            self.reordered,
            self._queue_packets,
            self._queue_bits,
            len(self._in_flight) + self._line_frames,
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
                aqm=self.drop_aqm,
                outage=self.drop_outage,
            ),
            ecn_marked=self.ecn_marked,
            duplicated=self.duplicated,
            corrupted=self.corrupted,
            reordered=self.reordered,
            queue_packets=self._queue_packets,
            queue_bytes=self._queue_bytes,
            queue_delay_ms=delay,
            in_flight=len(self._in_flight) + self._line_frames,
            held_bytes=self._held_bytes,
        )
