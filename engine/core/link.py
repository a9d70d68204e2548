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

from engine.core.bottleneck import Bottleneck
from engine.core.deadlines import not_before
from engine.core.delay_line import PACKET_OVERHEAD, DelayLine, DelaySamples, HeldBudget, Released
from engine.core.frames import VNET_HDR_LEN
from engine.core.hold_faults import held_release
from engine.core.impairments import Impairments
from engine.core.packet import Packet
from engine.core.tcp_faults import TcpFaults
from engine.model.fates import (
    BLACKHOLED,
    BLOCKED,
    BURST_LOSS,
    DUPLICATED,
    FLUSHED,
    FORWARDED,
    HELD_FULL,
    INJECTED,
    LOSS,
    OUTAGE,
    RESET,
)
from engine.model.spec import LinkSpec
from engine.model.stats import LinkStats
from engine.model.trace import Trace

__all__ = ["Link"]


class Link(DelayLine, Bottleneck, Impairments):
    """A link's state machine. `offer` takes packets in; `advance` lets time pass and hands
    out the frames whose time has come, with their release time. A link that follows a trace
    is handed it parsed (`trace`, for `spec.trace`): reading files is the caller's business.

    The link orchestrates its parts, each in its own module with its own slice of the spec:
    the bottleneck (queue, discipline, rate), the impairments, the delay line, and the
    counters they all write to. The parts are mixed into this one object rather than held as
    objects of their own: a packet crosses all of them, and a call or an attribute hop more
    per packet at each crossing would cost the packet path without changing what it does.
    `offer` and `_after_serialisation` are the two crossings, whole, as they run per packet."""

    def __init__(
        self,
        spec: LinkSpec,
        rng: random.Random,
        now: float,
        budget: HeldBudget | None = None,
        trace: Trace | None = None,
        delays: DelaySamples | None = None,
        label: str = "default",
    ) -> None:
        super().__init__()  # the counters
        self.label = label  # (a seed's streams are the flow's)
        self._rng = rng
        self._start_impairments()
        self._start_delay_line(budget, delays)
        self._start_bottleneck(now)
        self.spec = spec
        self._stats: LinkStats | None = None
        self._stats_state: tuple[float, ...] = ()
        #: With `reset` or `limit_data`: the TCP faults; and the frames they made that go
        #: back to the sender, for the worker to send (the pipeline collects them).
        self._tcp_faults: TcpFaults | None = None
        self.back: list[bytes] = []
        self._apply(spec, now, trace)

    def _apply(self, spec: LinkSpec, now: float, trace: Trace | None) -> None:
        """Hand each part its slice of the spec, once. The impairments come first: they and
        the bottleneck's discipline draw from one `Random`, in this order, for a seed's sake."""
        self.spec = spec
        self._configure_impairments(spec, now)
        self._configure_delay_line(spec, now)
        self._configure_bottleneck(spec, now, trace)
        if not spec.tcp_faults:
            self._tcp_faults = None
        elif self._tcp_faults is None:
            self._tcp_faults = TcpFaults(spec.reset, spec.limit_data)
        else:  # (its connections stay)
            self._tcp_faults.configure(spec.reset, spec.limit_data)
        #: The least time a frame offered now spends in the link, unless dropped: its latency
        #: (jitter and slots only add; netem's reordering skips it); a blocked link drops every
        #: frame, so it holds none back.
        if self._rate <= 0:
            self.least_delay = float("inf")
        else:
            self.least_delay = 0.0 if self._netem_reorder > 0 else self._latency
        self.transparent = spec.transparent and self._trace is None
        #: Nothing but the same latency for every packet, in order (`hold_runs` may be used).
        self.delay_only = spec.delay_only and self._trace is None and self._plain

    def configure(self, spec: LinkSpec, now: float, trace: Trace | None = None) -> None:
        """Take new settings (with the trace `spec.trace` names, parsed: see `Link`); queued
        and in-flight packets stay where they are."""
        self._apply(spec, now, trace)

    @property
    def idle(self) -> bool:
        return not self._queue_packets and not self._in_flight and not self._line

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
        if self._keys is not None:
            self._key_arrival(packet)
        if self._connections is not None and self._connection_faults(packet):
            self.drop_blackholed += packet.wire_packets
            if self.fates is not None:
                self.fates.note(packet.frame, packet.arrival, BLACKHOLED, self.label)
            return
        if self._tcp_faults is not None and self._tcp_faulted(packet):
            return
        frame = packet.frame  # as it arrived: a copy is of that (on an unlimited link the
        self._enqueue(packet)  # original may be through its impairments already)
        if self._duplicate > 0 and packet.droppable and self._duplicated_now():
            self.duplicated += packet.wire_packets
            copy = Packet(frame, packet.arrival, packet.wire_packets, packet.l2_bytes)
            copy.marks = DUPLICATED
            copy.hold_by, copy.hold = packet.hold_by, packet.hold  # (a FIN's copy is held too)
            if self._keys is not None:
                self._key_copy(packet, copy)
            self._enqueue(copy)

    def _tcp_faulted(self, packet: Packet) -> bool:
        """Whether a TCP fault fired on the packet: then it is dropped (fate `reset`), the
        frames made for its receiver take its place in the queue and those for its sender
        wait in `back`."""
        faults = self._tcp_faults
        assert faults is not None
        verdict = faults.check(
            packet.frame,
            packet.arrival,
            packet.l2_bytes,
            lambda toxicity, salt: self._toxic(packet, toxicity, salt),
        )
        if verdict is None:
            return False
        self.drop_reset += packet.wire_packets
        self.injected += len(verdict.forward) + len(verdict.back)
        fates = self.fates
        if fates is not None:
            fates.note(packet.frame, packet.arrival, RESET, self.label)
            for frame in verdict.back:
                fates.note(frame, packet.arrival, FORWARDED, self.label, marks=INJECTED)
        for frame in verdict.forward:
            made = Packet(frame, packet.arrival, 1, len(frame) - VNET_HDR_LEN, droppable=False)
            made.marks = INJECTED
            self._enqueue(made)
        self.back.extend(verdict.back)
        return True

    def _after_serialisation(self, packet: Packet, now: float) -> None:
        """From the bottleneck into the delay line, through loss, the held-bytes limits and
        netem's effects: one function, as it runs for every packet."""
        packet.serialised = now
        self.past_queue += packet.wire_packets
        if self._keys is not None:
            self._past_queue_stream(packet)
        if packet.droppable and self._lossy and self._is_lost() and not self._marked(packet):
            self.drop_loss += packet.wire_packets
            if self.fates is not None:
                random_only = self._burst is None and self._markov is None
                self.fates.note(packet.frame, packet.arrival, LOSS if random_only else BURST_LOSS,
                                self.label, marks=packet.marks)  # fmt: skip
            return
        size = len(packet.frame) + PACKET_OVERHEAD
        budget = self._budget
        if self._held_bytes + size > self._held_limit or budget.used + size > budget.limit:
            self.drop_held_full += packet.wire_packets
            if self.fates is not None:
                self.fates.note(packet.frame, packet.arrival, HELD_FULL, self.label,
                                marks=packet.marks)  # fmt: skip
            return
        self._held_bytes += size
        budget.used += size
        self._sequence += 1
        if self._per_packet and self._netem_effects(packet):
            release = now if packet.hold_by is None else self._held(packet, now)
            heapq.heappush(self._in_flight, (release, self._sequence, packet))  # overtakes
            return
        low, high, step = self._floor_span
        release = now + step if low <= now < high else self._due(now)  # (see `_due`)
        if self._jitter > 0 and (self._strength >= 1.0 or self._draws.random() < self._strength):
            release += self._jitter_draw()
        if not self._reorder:
            if release < self._last_release:
                release = self._last_release
            self._last_release = release
        if packet.hold_by is not None:  # (after: a hold keeps back its connection, no other)
            release = self._held(packet, release)
        heapq.heappush(self._in_flight, (release, self._sequence, packet))

    def _held(self, packet: Packet, release: float) -> float:
        """The release of a packet of a connection `slow_close` or `stall` holds, counted."""
        release, held = held_release(packet, release)
        if held:
            self.held += packet.wire_packets
        return release

    def advance(self, now: float, out: list[Released], serialise: bool = True) -> None:
        """Serialise what the rate allows up to `now`, then release what is due. Without
        `serialise`, only what was through the serialiser already: for a caller with frames
        still unread that may have come before `now`, whose arrivals must meet the queue as it
        was then (see `would_drop`); it releases the rest once it has read them."""
        if serialise and self._queue_packets and self._rate > 0:
            self._serialise(now)
        self._release(now, out)

    def flush(self) -> int:
        """Drop everything the link holds, queued and delayed (`linkshaper flush`); the count
        of wire packets dropped. Settings and clocks stay."""
        before, fates = self.drop_flushed, self.fates
        queued = self._flush_queue()
        room = 0 if fates is None else max(0, fates.limit - len(fates.records) - len(queued))
        delayed, held = self._flush_delayed(room)
        if fates is not None:  # (what the capture's buffer cannot take is counted as lost)
            for packet in [*queued, *delayed]:
                fates.note(packet.frame, packet.arrival, FLUSHED, self.label, marks=packet.marks)
            fates.lost += held - len(delayed)
        return self.drop_flushed - before

    def next_event(self) -> float | None:
        """The earliest time at which `advance` may hand something out. For what is still
        queued, that is when the head has been serialised, plus the latency: nobody needs the
        serialiser's own steps in between, since `advance` and `offer` (`would_drop`) work
        them out exactly, in time order, whenever they are called (a worker that woke for
        each would wake twice per packet)."""
        due = self._next_due()
        if self._queue_packets and self._rate > 0:
            finish = self._next_step()
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
            self.version,
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
            past_queue=self.past_queue,
            drops=self.drops(),
            ecn_marked=self.ecn_marked,
            duplicated=self.duplicated,
            corrupted=self.corrupted,
            reordered=self.reordered,
            held=self.held,
            queue_packets=self._queue_packets,
            queue_bytes=self._queue_bytes,
            queue_delay_ms=delay,
            in_flight=len(self._in_flight) + self._line_frames,
            held_bytes=self._held_bytes,
            connections=(0 if self._connections is None else len(self._connections))
            + (0 if self._tcp_faults is None else len(self._tcp_faults)),
            injected=self.injected,
            connections_untracked=self.connections_untracked,
        )
