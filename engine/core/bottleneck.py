"""A link's bottleneck: the queue in front of the rate limiter, its discipline (tail drop, head
drop or an AQM: engine/core/disciplines) and the serialiser that takes packets through at the
link's rate, or at the rate a trace gives at each moment."""

from __future__ import annotations

import random
from collections import deque

from engine.core.disciplines import Discipline, make_discipline
from engine.core.disciplines.fifo import TailDropQueue
from engine.core.link_counters import LinkCounters
from engine.core.outages import OutageClock
from engine.core.packet import Packet
from engine.model.fates import AQM, QUEUE_FULL
from engine.model.impairments import QueueLimit
from engine.model.spec import FRAMING_OVERHEAD, UNLIMITED_RATE, LinkSpec
from engine.model.trace import Trace, TraceClock

#: Behind an AQM, a super-frame that takes longer than this to serialise is cut into wire
#: packets (as CAKE splits GSO packets): at 20 Mbit/s a 64 KiB one would hold a sparse flow
#: for 26 ms, while at 1 Gbit/s it takes half a millisecond and cutting it would cost half
#: the throughput (bench.aqm_cost).
SPLIT_ABOVE_SECONDS = 0.001


class Bottleneck(LinkCounters):
    """The bottleneck part of a `Link` (mixed into it: see LinkCounters). Its settings are its
    slice of the spec, taken in `_configure_bottleneck`. `_enqueue` queues a packet (or drops
    it for the limits); `_serialise` takes through what the rate allows by a time, handing
    each packet to the link's `_after_serialisation`.

    With an AQM or an outage, the serialiser takes a packet out of the queue when it starts
    on it (`_in_service`, the AQM decides then) instead of when it has finished it."""

    _rng: random.Random
    _outage: OutageClock | None

    def _start_bottleneck(self, now: float) -> None:
        fifo = TailDropQueue(QueueLimit())  # until the spec names its discipline
        self._discipline: Discipline = fifo
        #: The FIFO's queue, read directly on the per-packet path; None under an AQM.
        self._fifo: deque[Packet] | None = fifo.queue
        self._in_service: Packet | None = None
        self._service_finish = 0.0
        #: Everything queued, the packet in service included (the limits' and stats' view).
        self._queue_bits = 0
        self._queue_bytes = 0
        self._queue_packets = 0
        self._free_at = now  # when the serialiser finished its last packet
        self._rate = 0.0
        self._trace: TraceClock | None = None

    def _configure_bottleneck(self, spec: LinkSpec, now: float, trace: Trace | None) -> None:
        if self._rate == 0 and spec.rate > 0:
            self._free_at = max(self._free_at, now)  # a blocked link starts sending now
        self._rate = float(spec.rate)
        self._set_trace(trace if spec.trace is not None else None, now)
        self._set_discipline(spec)
        #: A plain FIFO serialiser: no AQM, no outage (see `_managed`).
        self._plain = self._fifo is not None and self._outage is None
        self._accounting = (
            None
            if spec.overhead is None and spec.cell_size is None
            else (
                FRAMING_OVERHEAD if spec.overhead is None else spec.overhead,
                spec.cell_size,
                spec.cell_overhead,
            )
        )
        self._limit_packets = spec.queue.packets
        self._limit_bytes = spec.queue.bytes
        self._limit_bits_of_time = spec.queue.time_limit_bits(self._rate)
        self.needs_wire_packets = spec.needs_wire_packets
        #: Super-frames of more L2 bytes than this are cut up (see SPLIT_ABOVE_SECONDS).
        self.split_above = (
            max(2 * 1514, self._rate * SPLIT_ABOVE_SECONDS / 8)
            if self._fifo is None and self._rate > 0
            else float("inf")
        )
        # "Unlimited" means no serialiser at all: at 10 Gbit/s a 64 KiB super-frame would
        # otherwise wait 52 µs and cost the forwarder an extra wake-up for nothing.
        self._unlimited = self._rate >= UNLIMITED_RATE and self._trace is None

    def _set_discipline(self, spec: LinkSpec) -> None:
        """Keep the discipline (its state) if it stays the same kind; otherwise move what is
        queued, in arrival order, into the new queue without dropping any of it."""
        current = self._discipline
        if current.kind == spec.queue.discipline:
            current.configure(spec.queue)
            return
        new = make_discipline(spec.queue, self._rng)
        for packet in current.in_arrival_order():
            new.adopt(packet)
        self._discipline = new
        self._fifo = new.queue if isinstance(new, TailDropQueue) else None

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

    @property
    def _managed(self) -> bool:
        """Whether the serialiser takes packets out when it starts on them (see the class)."""
        return self._in_service is not None or not self._plain

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

    def _flush_queue(self) -> list[Packet]:
        """Drop everything queued (counted); the packets, the one in service first, for their
        fates."""
        waiting = list(self._discipline.packets())
        queued = waiting if self._in_service is None else [self._in_service, *waiting]
        self.drop_flushed += self._queue_packets
        self._discipline.clear()
        if self._in_service is not None:
            self._free_at = min(self._free_at, self._service_finish)
            self._in_service = None
        self._queue_bits = self._queue_bytes = self._queue_packets = 0
        return queued

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

    def _enqueue(self, packet: Packet) -> None:
        if self._accounting is None:  # (inline: this runs for every packet)
            packet.bits = (packet.l2_bytes + FRAMING_OVERHEAD * packet.wire_packets) * 8
        else:
            packet.bits = self._bits(packet)
        if self._unlimited and not self._queue_packets and self._plain:
            # No serialiser: the packet is through it on arrival, as `advance` would find.
            start = packet.arrival if packet.arrival > self._free_at else self._free_at
            self._free_at = start
            self._after_serialisation(packet, start)
            return
        if self.would_drop(packet) and not self._make_room(packet):
            self.drop_queue_full += packet.wire_packets
            if self.fates is not None:
                self.fates.note(packet.frame, packet.arrival, QUEUE_FULL, self.label,
                                marks=packet.marks)  # fmt: skip
            return
        self._queue_bits += packet.bits
        self._queue_bytes += packet.l2_bytes
        self._queue_packets += packet.wire_packets
        fifo = self._fifo
        if fifo is not None:
            fifo.append(packet)
        else:
            aqm = self._discipline
            aqm.push(packet, packet.arrival, self._queue_delay())
            self._collect(aqm)

    def _make_room(self, packet: Packet) -> bool:
        """Drop queued packets so that `packet` fits: head drop takes the oldest, fq_codel the
        head of its fattest flow. False when the arrival is the one dropped (tail drop)."""
        discipline = self._discipline
        while self._queue_packets and self._over_limit(packet):
            victim = discipline.drop_for_room()
            if victim is None:
                return False
            self._unqueue(victim)
            self.drop_queue_full += victim.wire_packets
            if self.fates is not None:
                self.fates.note(victim.frame, victim.arrival, QUEUE_FULL, self.label,
                                marks=victim.marks)  # fmt: skip
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
                    self.fates.note(victim.frame, victim.arrival, AQM, self.label,
                                    marks=victim.marks)  # fmt: skip
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
        if self._in_service is not None or not self._plain:
            self._serialise_managed(now)
            return
        queue = self._fifo
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
        fifo = self._fifo
        if fifo is not None:  # (read directly, as on every per-packet path: see fifo.py)
            if not fifo:
                return None
            arrival = fifo[0].arrival
        else:
            discipline = self._discipline
            if not discipline:
                return None
            arrival = discipline.head_arrival()
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
                fifo = self._fifo
                if fifo is not None:
                    packet = fifo.popleft()
                else:
                    discipline = self._discipline
                    packet = discipline.pop(start, self._queue_delay())
                    if discipline.dropped or discipline.marked:
                        self._collect(discipline)
                    if packet is None:
                        continue
                self._in_service = packet
                self._service_finish = self._finish_time(start, packet, commit=True)
            finish = self._service_finish
            if finish > now:
                return
            self._in_service = None
            self._unqueue(packet)
            self._free_at = finish
            self._after_serialisation(packet, finish)

    def _next_step(self) -> float | None:
        """When the serialiser next has to act on what is queued: finish the packet in service
        or start on the next (under an AQM or an outage, None while nothing can start), or
        finish the head of a plain FIFO."""
        if self._managed:
            return self._service_finish if self._in_service is not None else self._next_start()
        queue = self._fifo
        assert queue is not None
        head = queue[0]
        start = max(head.arrival, self._free_at)
        return self._finish_time(start, head, commit=False)

    def _after_serialisation(self, packet: Packet, now: float) -> None:
        """What becomes of a packet the serialiser finished at `now`: the link's business."""
        raise NotImplementedError
