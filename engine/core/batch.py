"""Prepare a received batch for the pipeline: the frames a worker read together, made ready to
go out from where they were read (the VLAN tag the kernel took off put back, a super-frame's
checksum marked partial), with their arrival times from the kernel's stamps, and for a link
that only delays, cut into the runs it holds in bulk. The worker calls here once per batch;
nothing here is called once per frame from the worker (`restore_tag` only for an odd frame of
a stream read one at a time).

The batch itself is the kernel edge's (`engine.kernel.mmsg.FrameBatch`), which the core does not
import: `ReceivedBatch` says what is read of it, and `BatchLayout` what the edge's numbers are.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from engine.core.deadlines import seconds_at_least
from engine.core.delay_line import PACKET_OVERHEAD
from engine.core.far_ends import StraightTally
from engine.core.frames import (
    HEAD_BYTES,
    VNET_HDR_LEN,
    mark_partial_checksum,
    put_back_vlan_tag,
    wire_shape,
)
from engine.core.packet import HeldRun

#: On a link that only delays, frames read together are held together where they were read
#: (`held_runs`), in runs of those that arrived within GATHER of the run's first: a run leaves
#: when its last frame is due, so a frame may leave up to GATHER late, never early, and a
#: worker wakes at most once per GATHER to release.
GATHER = 0.0002
#: What a frame held in bulk weighs against `queue.held_bytes` beyond its own bytes and
#: PACKET_OVERHEAD: the page of its batch it was read into, which stays in memory with it (a
#: slot per frame), so that the limit bounds the worker's memory for short frames too.
BULK_FRAME_PAGE = 4096
#: A kernel arrival stamp is trusted only if it is at most this old and not in the future:
#: else the wall clock it was read on may have moved (the worker's wall offset follows it at
#: every stats report), and the frame counts as arriving when read. A frame may wait long
#: unread: a saturated worker's receive buffer (16 MiB then) held frames for 30-50 ms, and at a
#: window of 50 ms those older got their whole latency again once read, and a delay line,
#: which releases in order, held every frame behind them as long (10 ms stalls, a few times a
#: second). A clock stepped back by less than this lets frames read before the next report
#: leave early by as much. Stamps and the offset are integer nanoseconds (the kernel's
#: timespec; a float of wall-clock seconds is 238 ns coarse), turned into the pipeline's
#: float seconds rounded up (engine/core/deadlines.py): an arrival is never taken early.
STAMP_WINDOW = 1.0


class ReceivedBatch(Protocol):
    """What is read of a receive batch: frame `i` lies at `i * slot` of `buffer` (`view` is the
    same memory), `sizes[i]` bytes long; per frame, the first control message's kind and first
    word, and the second's (where the first is an arrival stamp)."""

    buffer: memoryview
    view: memoryview
    sizes: memoryview
    first_kinds: memoryview
    first_words: memoryview
    second_kinds: memoryview
    second_words: memoryview

    def vlan_tag(self, index: int) -> bytes | None: ...

    def arrival_stamp_ns(self, index: int) -> int | None: ...


class BatchLayout(NamedTuple):
    """The kernel edge's numbers for its batches: the stride of a frame's slot, and the
    control message kind (auxdata) and status bit (a VLAN tag taken off) that tell an
    untagged frame."""

    slot: int
    auxdata: int
    vlan_valid: int


def arrival(stamp: int | None, now: float, wall_offset: int) -> float:
    """When a frame arrived, on the monotonic clock in seconds, never before its kernel stamp
    (wall-clock nanoseconds) if there is one and it is recent and not ahead (else the wall
    clock moved), or `now`."""
    if stamp is not None:
        at = seconds_at_least(stamp - wall_offset)
        if now - STAMP_WINDOW < at <= now:
            return at
    return now


def restore_tag(batch: ReceivedBatch, index: int, slot: int) -> int:
    """Put the VLAN tag the kernel took off frame `index` of `batch` back in place (if it had
    one), in its slot, and return the frame's size; callers look first at the batch's
    `first_kinds` and `first_words`, which tell most untagged frames apart for less."""
    tag = batch.vlan_tag(index)
    if tag is not None:
        batch.sizes[index] = put_back_vlan_tag(batch.view, index * slot, batch.sizes[index], tag)
    return int(batch.sizes[index])


def ready_to_send(
    batch: ReceivedBatch,
    count: int,
    tally: StraightTally | None,
    stamped: bool,
    layout: BatchLayout,
) -> list[int]:
    """Make the `count` frames just read into `batch` ready to go out from where they are
    (the VLAN tag the kernel took off put back, a super-frame's checksum marked partial)
    and count them in `tally` (if any), after which nothing reads a frame again. `stamped`:
    whether the socket stamps arrivals. Returns where the super-frames are."""
    buffer = batch.buffer
    view = batch.view
    sizes = batch.sizes
    slot, auxdata, vlan_valid = layout
    # The auxdata (VLAN tag) comes after the arrival stamp where frames are stamped; a
    # frame whose control messages are not as expected is looked at closer.
    if stamped:
        kinds, words = batch.second_kinds, batch.second_words
    else:
        kinds, words = batch.first_kinds, batch.first_words
    # Most batches need nothing done to any frame: that is found a batch at a time, by
    # loops in C over the batch's headers, and the frames are counted in bulk.
    if (
        kinds[:count].tolist().count(auxdata) == count
        and not any(status & vlan_valid for status in set(words[:count].tolist()))
        and not any(buffer[1 : count * slot : slot])  # no super-frame (GSO type 0)
    ):
        if tally is not None:
            tally.count_plain(buffer, sizes, count, slot)
        return []
    count_frame = tally.count if tally is not None else None
    supers: list[int] = []
    start = 0
    for index in range(count):
        if kinds[index] != auxdata or words[index] & vlan_valid:
            restore_tag(batch, index, slot)  # tagged, or not the control messages expected
        size = sizes[index]
        if buffer[start + 1]:  # a super-frame: make it one the kernel will segment
            mark_partial_checksum(view[start : start + size])
            supers.append(index)
        if count_frame is not None:
            count_frame(buffer, start, size)
        start += slot
    return supers


def prepared(
    batch: ReceivedBatch,
    count: int,
    now: float,
    stamped: bool,
    wall_offset: int,
    layout: BatchLayout,
) -> list[float]:
    """Make the `count` frames just read ready for the pipeline (`ready_to_send`, uncounted:
    the pipeline counts what it is handed) and return each one's arrival time: the kernel's
    stamp where the socket stamps arrivals (`wall_offset`: the wall clock less the monotonic
    one, in nanoseconds), else `now`."""
    ready_to_send(batch, count, None, stamped, layout)
    if not stamped:
        return [now] * count
    stamp_of = batch.arrival_stamp_ns
    return [arrival(stamp_of(index), now, wall_offset) for index in range(count)]


def bulk_weight(frame_bytes: int, frames: int) -> int:
    """What `frames` frames of `frame_bytes` in all weigh against a link's held-bytes limits,
    held in bulk: their bytes, PACKET_OVERHEAD each, and the page each keeps
    (BULK_FRAME_PAGE)."""
    return frame_bytes + frames * (PACKET_OVERHEAD + BULK_FRAME_PAGE)


def held_runs(
    batch: ReceivedBatch,
    count: int,
    now: float,
    tally: StraightTally,
    stamped: bool,
    wall_offset: int,
    layout: BatchLayout,
) -> list[HeldRun]:
    """The `count` frames of `batch` as a delay line holds them, as they are: made ready to
    send and counted in `tally` (`ready_to_send`), in runs of those that arrived within
    GATHER of each other (see `arrival_runs`), each with its wire packets and bytes: no copy
    and no pipeline call per frame."""
    slot = layout.slot
    sizes = batch.sizes
    view = batch.view
    supers = [
        (index, wire_shape(view[index * slot : index * slot + HEAD_BYTES], sizes[index]))
        for index in ready_to_send(batch, count, tally, stamped, layout)
    ]
    runs: list[HeldRun] = []
    for begin, stop, first, last in arrival_runs(batch, count, now, stamped, wall_offset):
        frames = stop - begin
        frame_bytes = sum(sizes[begin:stop])
        packets, l2_bytes = frames, frame_bytes - frames * VNET_HDR_LEN
        for index, shape in supers:
            if begin <= index < stop:
                packets += shape.packets - 1
                l2_bytes += shape.l2_bytes - (sizes[index] - VNET_HDR_LEN)
        held = bulk_weight(frame_bytes, frames)
        runs.append(HeldRun(batch, begin, stop, first, last, packets, l2_bytes, held))
    return runs


def arrival_runs(
    batch: ReceivedBatch, count: int, now: float, stamped: bool, wall_offset: int
) -> list[tuple[int, int, float, float]]:
    """The runs of `batch`'s first `count` frames, as (first, end, first arrival, last
    arrival): each frame joins the run of the first that arrived at most GATHER before
    it. A socket queue is in arrival order, so the kernel's stamps only grow and each
    run's end is found by bisection, with a few stamps read per run, not every frame's."""
    if not stamped:
        return [(0, count, now, now)]
    stamp_of = batch.arrival_stamp_ns
    if count == 1:  # most wake-ups of a sparse stream
        first = arrival(stamp_of(0), now, wall_offset)
        return [(0, 1, first, first)]
    found: list[tuple[int, int, float, float]] = []
    begin = 0
    while begin < count:
        first = arrival(stamp_of(begin), now, wall_offset)
        end = count - 1
        last = arrival(stamp_of(end), now, wall_offset)
        if last - first > GATHER:
            limit = first + GATHER
            low, high = begin, end  # arrival(low) <= limit < arrival(high)
            while high - low > 1:
                middle = (low + high) // 2
                if arrival(stamp_of(middle), now, wall_offset) <= limit:
                    low = middle
                else:
                    high = middle
            end = low
            last = arrival(stamp_of(end), now, wall_offset)
        found.append((begin, end + 1, first, max(first, last)))
        begin = end + 1
    return found
