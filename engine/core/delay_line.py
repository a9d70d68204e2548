"""A link's delay line: what left the serialiser, held until its time comes (latency, jitter,
delivery slots), and runs of frames held in bulk on a link that only delays. It answers to the
held-bytes limits of the link and of its direction, and samples how long frames took."""

from __future__ import annotations

import heapq
import random
from collections import deque

from engine.core.deadlines import NO_SPAN, exact_span, not_before
from engine.core.link_counters import LinkCounters
from engine.core.packet import HeldRun, Packet
from engine.core.slots import SlotGate
from engine.model.fates import FORWARDED
from engine.model.spec import LinkSpec

#: What a held packet costs beyond its frame's bytes (its Packet, heap entry, bytes header),
#: counted against `queue.held_bytes` and the direction's HeldBudget. Measured: 310-370
#: bytes by tracemalloc, 550-630 of a worker's RSS in a flood of small held frames (the
#: allocator's own share); 200 had let a direction's 256 MiB hold grow some 500 MB.
PACKET_OVERHEAD = 600

#: What `Link.advance` hands out: release time, sequence, and a copy of a frame or a run of
#: frames held in bulk (see `Link.hold_runs`).
Released = tuple[float, int, bytes | HeldRun]


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


class DelayLine(LinkCounters):
    """The delay line part of a `Link` (mixed into it: see LinkCounters). Its settings are
    its slice of the spec, taken in `_configure_delay_line`; the link schedules each packet
    past the serialiser into `_in_flight`, and `_release` hands out what is due."""

    _rng: random.Random

    def _start_delay_line(self, budget: HeldBudget | None, delays: DelaySamples | None) -> None:
        self._budget = budget if budget is not None else HeldBudget(1 << 62)
        self._delays = delays if delays is not None else DelaySamples()
        self._held_bytes = 0
        self._in_flight: list[tuple[float, int, Packet]] = []
        #: Runs of frames held in bulk (`hold_runs`), in release order: (due, sequence, run).
        self._line: deque[tuple[float, int, HeldRun]] = deque()
        self._line_frames = 0
        self._sequence = 0
        self._last_release = float("-inf")
        self._slots: SlotGate | None = None

    def _configure_delay_line(self, spec: LinkSpec, now: float) -> None:
        self._latency = spec.latency / 1000.0
        #: (low, high, step): for times from low to below high, time + step is the deadline
        #: exactly (the latency rounded up in the clock's binade, see `_due`); found anew at
        #: the next frame.
        self._floor_span = NO_SPAN
        self._set_slots(spec, now)
        self._held_limit = spec.queue.held_bytes

    def _set_slots(self, spec: LinkSpec, now: float) -> None:
        if spec.slot is None:
            self._slots = None
        elif self._slots is None:
            self._slots = SlotGate(spec.slot, self._rng, now)
        else:
            self._slots.configure(spec.slot)

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
        self.past_queue += packets
        self._held_bytes += held
        self._budget.used += held

    def _due(self, time: float) -> float:
        """`time` plus the latency, rounded up, not to nearest: a delay is a floor, whatever
        the clock reads (deadlines.py). Also keeps the span of times around `time` for which
        adding `_floor_span`'s step gives the same exactly, without this call."""
        self._floor_span = exact_span(time, self._latency)
        return not_before(time, self._latency)

    def _release(self, now: float, out: list[Released]) -> None:
        """Release what is due by `now`, runs held in bulk and packets alike, in order."""
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
                               packet.serialised - arrival, packet.marks)  # fmt: skip
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
                self.fates.note(packet.frame, packet.arrival, FORWARDED, self.label, delay, queued,
                                packet.marks)  # fmt: skip
            if len(self._delays.values) < DelaySamples.LIMIT:
                self._delays.values.append(delay)

    def _next_due(self) -> float | None:
        """When the first of what is held is due (queued packets aside)."""
        in_flight = self._in_flight
        due = in_flight[0][0] if in_flight else None
        if due is not None and self._slots is not None:
            due = self._slots.release_time(due)
        if self._line and (due is None or self._line[0][0] < due):
            due = self._line[0][0]
        return due

    def _flush_delayed(self, noted: int = 0) -> tuple[list[Packet], int]:
        """Drop everything held (the runs held in bulk counted, not noted); the first `noted`
        packets in release order, for their fates, and how many packets were held singly.
        Only those are sorted out of the heap: a flush of a million held frames must not keep
        the worker from its supervisor."""
        in_flight = self._in_flight
        self.drop_flushed += sum(p.wire_packets for _, _, p in in_flight)
        self.drop_flushed += sum(run.wire_packets for _, _, run in self._line)
        first = heapq.nsmallest(noted, in_flight) if noted > 0 else []
        self._in_flight = []
        self._line.clear()
        self._line_frames = 0
        self._budget.used -= self._held_bytes
        self._held_bytes = 0
        self._last_release = float("-inf")
        return [packet for _, _, packet in first], len(in_flight)
