"""A worker process: one direction of the engine, from one interface to the other.

It sleeps in `select` until a frame arrives, a message comes down the pipe, or the pipeline's
next packet is due, so it costs nothing when idle. While its links hold frames it wakes once
per release, reading the frames that came meanwhile then (their kernel stamps keep their
arrival times); a link that only delays keeps them in bulk where they were read
(`Forwarder._hold_batch`). It polls only with `run --precise`, for short, bounded spells while
traffic flows: the last moments before a release (as long as this machine's timers run late,
`WakeMargin`), yielding the CPU to others between tries; and on a transparent link with
sparse frames, up to POLL_WINDOW after each frame, so that the next one is not held up by a
wake-up (see `Forwarder.stream_straight`). While frames stream through and nothing is held,
it reads with blocking reads instead of `select` (see `_loop`), on a transparent link many
frames a system call when they come fast (`engine.kernel.mmsg`). Stats go up the pipe at the
pace the supervisor sets (`StatsPace`), through an outbox that never waits for the supervisor
(`engine.daemon.channel`); they are its heartbeat. All shaping decisions are made by the pure
`DirectionPipeline`.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import gc
import json
import math
import os
import select
import signal
import socket
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Literal, cast

from pydantic import ValidationError

from engine.core.classifier import DEFAULT_LABEL
from engine.core.deadlines import NANOSECONDS, seconds_at_least, seconds_at_most
from engine.core.frames import (
    HEAD_BYTES,
    VNET_HDR_LEN,
    mark_partial_checksum,
    put_back_vlan_tag,
    wire_shape,
)
from engine.core.link import PACKET_OVERHEAD
from engine.core.packet import HeldRun
from engine.core.pipeline import SETTLE_SAMPLES, DirectionPipeline, StraightTally
from engine.core.wake_margin import CEILING, WakeMargin
from engine.daemon.channel import Outbox
from engine.files.trace_files import traces_in_force
from engine.kernel.afpacket import (
    PACKET_AUXDATA,
    TP_STATUS_VLAN_VALID,
    kernel_drops,
    open_receiver,
    open_sender,
    stamp_arrivals,
)
from engine.kernel.interface_state import LINK_ERRNOS, LinkWatch, links_problem
from engine.kernel.libc import libc
from engine.kernel.mmsg import BATCH, SLOT, FrameBatch
from engine.model.fates import FORWARDED, pack
from engine.model.spec import Direction, Spec
from engine.model.stats import InterfaceState
from engine.model.trace import TraceFile
from engine.protocol.messages import (
    Configure,
    Configured,
    FarEnds,
    FateRecords,
    Flush,
    Message,
    StartCapture,
    StatsPace,
    StatsReport,
    Stop,
    StopCapture,
    WorkerError,
    WorkerNote,
    decode,
    encode,
)

STATS_INTERVAL = 0.1
#: With nobody watching, stats go up this rarely, traffic or not: an idle engine stays asleep,
#: and a busy one spends nothing on figures nobody reads (a report, built cold after a sleep,
#: costs some 0.7 ms here). The supervisor asks for STATS_INTERVAL while a TUI, a stream or a
#: recorder watches, and for a report at once when a client asks for stats (`StatsPace`).
IDLE_STATS_INTERVAL = 1.0
RX_BATCH = 256
#: Streaming (see `_loop`) goes on this long after the last frame, then the worker sleeps in
#: `select` again: an idle engine makes no wake-ups.
STREAM_HOLD = 0.05
#: While streaming, the pipe from the supervisor is looked at this often (and whenever a
#: read times out: afpacket.READ_TIMEOUT, rounded up to the kernel's tick).
CONTROL_POLL = 0.002
#: On the straight path with sparse frames (fewer than POLL_BELOW_RATE a second in the last
#: stretch), a worker polls its socket for up to this long after a frame before it blocks. A
#: blocked process takes 15-20 µs to wake on this kind of machine (a halted virtual CPU is
#: woken through the host), and a round trip crosses the engine twice; polling takes that off
#: for anything sent at least every POLL_WINDOW (games, calls, ping -i 0.01), at the price of
#: a core per direction while it lasts, yielded to any other process that wants it. Bulk
#: traffic rarely finds the socket empty and needs its CPU for the endpoints, so it blocks.
POLL_WINDOW = 0.025
POLL_BELOW_RATE = 2000.0
#: While every link holds frames for at least this long (`DirectionPipeline.read_slack`), and
#: some are held, a worker reads new frames when it wakes to release (or after half the slack,
#: at most DEFER_MAX): their kernel stamps keep their arrival times, and a sleep and a wake-up,
#: some 40 µs of CPU on a virtual machine, are saved per frame.
DEFER_MIN = 0.001
DEFER_MAX = 0.005
#: On a link that only delays, frames read together are held together where they were read
#: (`Forwarder._hold_batch`), in runs of those that arrived within GATHER of the run's first:
#: a run leaves when its last frame is due, so a frame may leave up to GATHER late, never
#: early, and a worker wakes at most once per GATHER to release.
GATHER = 0.0002
#: Receive batches kept for reuse once the frames they held have left (making one takes some
#: 0.1 ms, which a stream that holds a batch per wake-up would otherwise pay again and again).
#: Their pages are what the link held a moment ago (within its held-bytes limit); once the
#: traffic stops, all but SPARE_PAGES_KEPT give them back (`Forwarder.trim_spares`).
SPARE_BATCHES = 256
SPARE_PAGES_KEPT = 8
#: What a frame held in bulk weighs against `queue.held_bytes` beyond its own bytes and
#: PACKET_OVERHEAD: the page of its batch it was read into, which stays in memory with it (a
#: slot per frame), so that the limit bounds the worker's memory for short frames too.
BULK_FRAME_PAGE = 4096
#: A time that never comes (`Forwarder.drain`: nothing to release meanwhile).
NEVER = math.inf
#: The far ends' counts (for the seed's traffic profiles) go up at most this often.
FAR_ENDS_INTERVAL = 1.0
#: A kernel arrival stamp is trusted only if it is at most this old and not in the future:
#: else the wall clock it was read on may have moved (`_wall_offset` follows it at every
#: stats report), and the frame counts as arriving when read. A frame may wait long unread:
#: a saturated worker's receive buffer (16 MiB) held frames for 30-50 ms, and at a window of
#: 50 ms those older got their whole latency again once read, and a delay line, which
#: releases in order, held every frame behind them as long (10 ms stalls, a few times a
#: second). A clock stepped back by less than this lets frames read before the next report
#: leave early by as much. Stamps and the offset are integer nanoseconds (the kernel's
#: timespec; a float of wall-clock seconds is 238 ns coarse), turned into the pipeline's
#: float seconds rounded up (engine/core/deadlines.py): an arrival is never taken early.
STAMP_WINDOW = 1.0
SEND_RETRIES = 200
#: A kind of send error (by errno) is written to the log at most this often; all are counted.
SEND_ERROR_LOG_INTERVAL = 60.0
#: While an interface is down or missing, the worker wakes on every link change (netlink) and
#: also this often, in case an announcement was lost.
LINK_RECHECK = 1.0
#: A capture's records go up at least with each stats report, and in batches of this many.
FATE_BATCH = 1024


class Forwarder:
    """One direction's frames from `rx_ifname` to `tx_ifname` through its pipeline. Its
    sockets are opened by interface name, or handed in (`sockets`: receiver and sender, for
    tests over socket pairs; they are never reopened, and count no kernel drops)."""

    def __init__(
        self,
        direction: Direction,
        rx_ifname: str,
        tx_ifname: str,
        spec: Spec,
        precise: bool = False,
        sockets: tuple[socket.socket, socket.socket] | None = None,
        unshaped_port: int | None = None,
        trace_files: Mapping[str, TraceFile] | None = None,
    ):
        """`trace_files`: the files the spec's traces were admitted from (`Configure`)."""
        self.direction = direction
        self.rx_ifname = rx_ifname
        self.tx_ifname = tx_ifname
        self.pipeline = DirectionPipeline(
            spec,
            direction,
            time.monotonic(),
            traces=traces_in_force(spec, trace_files or {}),
            unshaped_port=unshaped_port,
        )
        self.kernel_drops = 0
        self.tx_errors = 0
        #: Log lines for the supervisor, sent with the next stats (see `_send_again`).
        self.notes: list[WorkerNote] = []
        self._error_logged: dict[int, float] = {}
        #: "up" while forwarding; else why not (see `_wait_for_links`).
        self.interface_state: InterfaceState = "up"
        self.interface_problem = ""
        self.stamped = False
        #: The wall clock (the kernel's stamps) less the monotonic one (the pipeline's), in
        #: nanoseconds (see `_wall_offset_now`).
        self._wall_offset = _wall_offset_now()
        #: Whether to poll, for sparse frames and before releases (`run --precise`).
        self.precise = precise
        #: Whether the last stretch of streaming had sparse frames (under POLL_BELOW_RATE a
        #: second): then frames are read one at a time, and polled for (POLL_WINDOW).
        self.sparse = True
        #: Where the next frames are read; a link that only delays may keep it (see
        #: `_hold_batch`), and then another takes its place, from the spares if any.
        self._batch = FrameBatch()
        self._spares: list[FrameBatch] = []
        #: Whether a batch came back to the spares since `trim_spares`.
        self._spares_used = False
        #: Slots for released frames sent several at a time (`send_all`).
        self._out_batch = FrameBatch()
        #: Poll for the next frame until then (see `stream_straight`).
        self.poll_until = 0.0
        #: While a drain releases what falls due meanwhile: when that is (see `drain`).
        self._due_meanwhile = NEVER
        self._far_ends_due = 0.0
        #: How often stats go up (`StatsPace`; slow until the supervisor says someone watches).
        self.stats_pace = IDLE_STATS_INTERVAL
        self.pipeline.pace_talkers(self.stats_pace)
        self.rx: socket.socket
        self.tx: socket.socket
        self._packet_sockets = sockets is None
        if sockets is not None:
            self.rx, self.tx = sockets
            self.follow_spec()
            return
        try:
            self.open()
        except OSError as exc:
            if exc.errno not in LINK_ERRNOS:
                raise
            self.lose_interfaces(opened=False)

    def open(self) -> None:
        """Open both sockets (by name: an interface made again has a new index)."""
        rx = open_receiver(self.rx_ifname)
        try:
            tx = open_sender(self.tx_ifname)
        except OSError:
            rx.close()
            raise
        self.rx, self.tx = rx, tx
        self.stamped = False
        self.follow_spec()

    def follow_spec(self) -> None:
        """Use the kernel's arrival stamps while any link holds frames back: then a frame's
        latency and its place in the queue count from when it arrived, not from when this
        process woke up to read it. Transparent links skip the cost."""
        wanted = not self.pipeline.transparent
        if wanted != self.stamped:
            stamp_arrivals(self.rx, wanted)
            self.stamped = wanted

    def drain(self, releasing: bool = False) -> bool:
        """Read what is waiting (the socket does not block), up to RX_BATCH frames, mmsg.BATCH
        a system call, through `_take_batch`. A frame's arrival time is all a link needs to
        treat it as on arrival, however late it is read (see `_loop`: reads wait while links
        hold frames). The caller releases what falls due; with `releasing`, what falls due
        meanwhile leaves as soon as a frame has been taken (`_release_meanwhile`), not after
        all of them. True if it stopped at RX_BATCH, with more perhaps waiting."""
        nowait = socket.MSG_DONTWAIT
        if releasing:
            self._due_meanwhile = self.pipeline.next_deadline() or NEVER
        try:
            for _ in range(RX_BATCH // BATCH):
                try:
                    count = self._batch.receive(self.rx, nowait)
                except BlockingIOError:
                    return False
                self._take_batch(count, time.monotonic())
                if count < BATCH:
                    return False
            return True
        finally:
            self._due_meanwhile = NEVER

    def _release_meanwhile(self) -> float:
        """Send what fell due while a drain takes frames one by one (each costs tens of
        microseconds cold, and a wake-up may read several): only what is through its link's
        serialiser (`release` without serialising), since frames still unread must meet the
        queues as they were when they came. Returns when to look again: never in this drain
        if nothing left (the rest waits on a serialiser, worked once all are read)."""
        pipeline = self.pipeline
        released = pipeline.release(_clock_at_most(), serialise=False)
        if not released:
            return NEVER
        self.send_all(released)
        return pipeline.next_deadline() or NEVER

    def _take_batch(self, count: int, now: float) -> None:
        """The `count` frames just read into `_batch`: held there in bulk if every frame takes
        a link that only delays and they fit its limits (`_hold_batch`), else one by one
        through the pipeline (`_forward_batch`)."""
        if self.pipeline.delay_line is not None and self._hold_batch(self._batch, count, now):
            self._batch = self._spares.pop() if self._spares else FrameBatch()
        else:
            self._forward_batch(count, now)

    def _hold_batch(self, batch: FrameBatch, count: int, now: float) -> bool:
        """Hand the pipeline's delay line the `count` frames of `batch` as they are, in runs of
        those that arrived within GATHER of each other (see GATHER and `_runs`), each with its
        wire packets and bytes: no copy and no pipeline call per frame. False (and nothing
        done) if they do not fit the link's held-bytes limits."""
        pipeline = self.pipeline
        sizes = batch.sizes
        if not pipeline.can_hold(sum(sizes[:count]) + count * (PACKET_OVERHEAD + BULK_FRAME_PAGE)):
            return False
        view = batch.view
        tally = pipeline.tally()
        supers = [
            (index, wire_shape(view[index * SLOT : index * SLOT + HEAD_BYTES], sizes[index]))
            for index in self._ready_to_send(batch, count, tally)
        ]
        runs: list[HeldRun] = []
        for begin, stop, first, last in self._runs(batch, count, now):
            frames = stop - begin
            frame_bytes = sum(sizes[begin:stop])
            packets, l2_bytes = frames, frame_bytes - frames * VNET_HDR_LEN
            for index, shape in supers:
                if begin <= index < stop:
                    packets += shape.packets - 1
                    l2_bytes += shape.l2_bytes - (sizes[index] - VNET_HDR_LEN)
            held = frame_bytes + frames * (PACKET_OVERHEAD + BULK_FRAME_PAGE)
            runs.append(HeldRun(batch, begin, stop, first, last, packets, l2_bytes, held))
        batch.held_runs = len(runs)
        pipeline.hold(runs, tally)
        return True

    def _ready_to_send(self, batch: FrameBatch, count: int, tally: StraightTally) -> list[int]:
        """Make the `count` frames just read into `batch` ready to go out from where they are
        (the VLAN tag the kernel took off put back, a super-frame's checksum marked partial)
        and count them in `tally`, after which nothing reads a frame again. Returns where the
        super-frames are."""
        buffer = batch.buffer
        view = batch.view
        sizes = batch.sizes
        # The auxdata (VLAN tag) comes after the arrival stamp where frames are stamped; a
        # frame whose control messages are not as expected is looked at closer.
        if self.stamped:
            kinds, words = batch.second_kinds, batch.second_words
        else:
            kinds, words = batch.first_kinds, batch.first_words
        # Most batches need nothing done to any frame: that is found a batch at a time, by
        # loops in C over the batch's headers, and the frames are counted in bulk.
        if (
            kinds[:count].tolist().count(PACKET_AUXDATA) == count
            and not any(status & TP_STATUS_VLAN_VALID for status in set(words[:count].tolist()))
            and not any(buffer[1 : count * SLOT : SLOT])  # no super-frame (GSO type 0)
        ):
            tally.count_plain(buffer, sizes, count, SLOT)
            return []
        count_frame = tally.count
        supers: list[int] = []
        start = 0
        for index in range(count):
            if kinds[index] != PACKET_AUXDATA or words[index] & TP_STATUS_VLAN_VALID:
                _restore_tag(batch, index)  # tagged, or not the control messages expected
            size = sizes[index]
            if buffer[start + 1]:  # a super-frame, see `_forward_batch`
                mark_partial_checksum(view[start : start + size])
                supers.append(index)
            count_frame(buffer, start, size)
            start += SLOT
        return supers

    def _runs(
        self, batch: FrameBatch, count: int, now: float
    ) -> list[tuple[int, int, float, float]]:
        """The runs of `batch`'s first `count` frames, as (first, end, first arrival, last
        arrival): each frame joins the run of the first that arrived at most GATHER before
        it. A socket queue is in arrival order, so the kernel's stamps only grow and each
        run's end is found by bisection, with a few stamps read per run, not every frame's."""
        if not self.stamped:
            return [(0, count, now, now)]
        stamp_of = batch.arrival_stamp_ns
        wall_offset = self._wall_offset
        if count == 1:  # most wake-ups of a sparse stream
            arrival = _arrival(stamp_of(0), now, wall_offset)
            return [(0, 1, arrival, arrival)]
        found: list[tuple[int, int, float, float]] = []
        begin = 0
        while begin < count:
            first = _arrival(stamp_of(begin), now, wall_offset)
            end = count - 1
            last = _arrival(stamp_of(end), now, wall_offset)
            if last - first > GATHER:
                limit = first + GATHER
                low, high = begin, end  # arrival(low) <= limit < arrival(high)
                while high - low > 1:
                    middle = (low + high) // 2
                    if _arrival(stamp_of(middle), now, wall_offset) <= limit:
                        low = middle
                    else:
                        high = middle
                end = low
                last = _arrival(stamp_of(end), now, wall_offset)
            found.append((begin, end + 1, first, max(first, last)))
            begin = end + 1
        return found

    def _forward_batch(self, count: int, now: float) -> None:
        """Pass the `count` frames just read to the pipeline, each with its arrival time (the
        kernel's stamp where links hold frames, else `now`), and send those it lets through
        at once, in runs of one `sendmmsg`, from where they were read."""
        batch = self._batch
        sizes = batch.sizes
        buffer = batch.buffer
        view = batch.view
        maybe_tagged = batch.maybe_tagged
        stamp_of = batch.arrival_stamp_ns
        stamped = self.stamped
        wall_offset = self._wall_offset
        forward = self.pipeline.forward
        due = self._due_meanwhile
        clock = time.monotonic
        run = 0  # frames run..index-1 go out together
        start = 0
        for index in range(count):
            if maybe_tagged(index):
                _restore_tag(batch, index)
            size = sizes[index]
            frame = view[start : start + size]
            if buffer[start + 1]:  # a super-frame: make it one the kernel will segment
                mark_partial_checksum(frame)
            arrival = _arrival(stamp_of(index), now, wall_offset) if stamped else now
            if not forward(frame, arrival):  # held (a copy) or dropped: not sent
                if run < index:
                    self._send_batch(index, run)
                run = index + 1
            start += SLOT
            if due < NEVER and clock() >= due:
                if run <= index:
                    self._send_batch(index + 1, run)
                    run = index + 1
                due = self._due_meanwhile = self._release_meanwhile()
        if run < count:
            self._send_batch(count, run)

    def stream_straight(self, conn: Connection, stats_due: float, last_frame: float) -> None:
        """Stream on the straight path (`DirectionPipeline.straight`): each frame goes out the
        moment it is read, and all counting waits until this returns, from plain local sums
        and copies of a few frames' headers. Returns when stats are due, when a message waits
        on `conn` (looked at every CONTROL_POLL, and whenever a read times out), when no
        frame came for STREAM_HOLD since `last_frame`, or when SETTLE_SAMPLES frames' far ends
        wait to be counted (a second's would stop forwarding for tens of milliseconds).

        Two ways, chosen from the rate of the call before (`sparse`: under POLL_BELOW_RATE
        frames a second): sparse frames one at a time, each sent before the next read
        (`_stream_frames`), bulk in batches of up to mmsg.BATCH frames a system call
        (`_stream_batches`), which is faster when frames queue up and slower by a batch's
        handling when they do not. The pipeline cannot change meanwhile: configuration is
        applied between calls."""
        started = time.monotonic()
        tally = StraightTally(self.pipeline.exact_talkers_left)
        if self.sparse:
            self._stream_frames(conn, stats_due, last_frame, tally)
        else:
            self._stream_batches(conn, stats_due, last_frame, tally)
        self.sparse = tally.frames <= POLL_BELOW_RATE * (time.monotonic() - started)
        if tally.frames:
            self.pipeline.passed_straight(tally)

    def _stream_frames(
        self, conn: Connection, stats_due: float, last_frame: float, tally: StraightTally
    ) -> None:
        """One frame per read. With polling on (`poll`), after a frame that came less than
        POLL_WINDOW after the one before, it polls for twice that gap (at most POLL_WINDOW)
        before it blocks, yielding the CPU between tries: enough for the next frame of a
        steady stream, and next to nothing for a lone frame or a pair of them (a host's IPv6
        chatter).

        Why so lean: the far side's reply is often woken on this CPU by the send itself, and
        runs only once this process blocks again, so whatever runs between a send and the next
        read adds to the round trip. That includes a trip through the worker's own loop,
        which is why the pipe is looked at from here."""
        batch = self._batch  # its first slot: one frame and its ancillary data a read
        buffer = batch.buffer
        view = batch.view
        sizes = batch.sizes
        kinds, statuses = batch.first_kinds, batch.first_words
        receive = batch.receive
        rx = self.rx
        send = self.tx.send
        clock = time.monotonic
        pause = os.sched_yield
        nowait = socket.MSG_DONTWAIT
        watch = [conn.fileno()]  # a number: select calls fileno() on anything else
        tally_sent = tally.count
        sampled = tally.sampled
        now = clock()
        check = now + CONTROL_POLL
        poll = self.precise
        poll_until = self.poll_until if poll else 0.0
        polling = now < poll_until
        try:
            while True:
                try:
                    receive(rx, nowait if polling else 0, 1)
                except BlockingIOError:  # nothing yet, or the blocking read timed out
                    now = clock()
                    if now >= stats_due:
                        return
                    if polling:
                        polling = now < poll_until
                        if now < check:
                            pause()
                            continue
                    elif now - last_frame >= STREAM_HOLD:
                        return
                    if select.select(watch, [], [], 0)[0]:
                        return
                    check = now + CONTROL_POLL
                    continue
                size = sizes[0]
                if kinds[0] != PACKET_AUXDATA or statuses[0] & TP_STATUS_VLAN_VALID:
                    size = _restore_tag(batch, 0)  # see `_ready_to_send`
                frame = view[:size]
                if buffer[1]:  # a super-frame, see `_forward_batch`
                    mark_partial_checksum(frame)
                try:
                    send(frame)
                except OSError as error:
                    self._send_again(frame, error)
                tally_sent(buffer, 0, size)
                now = clock()
                if poll:
                    gap = now - last_frame
                    if gap < POLL_WINDOW:
                        poll_until = now + min(POLL_WINDOW, 2.0 * gap)
                        polling = True
                last_frame = now
                if len(sampled) >= SETTLE_SAMPLES:
                    return
                if last_frame >= check:
                    if last_frame >= stats_due or select.select(watch, [], [], 0)[0]:
                        return
                    check = last_frame + CONTROL_POLL
        finally:
            self.poll_until = poll_until

    def _stream_batches(
        self, conn: Connection, stats_due: float, last_frame: float, tally: StraightTally
    ) -> None:
        """Up to mmsg.BATCH frames per read and per send: the first read blocks, and takes
        whatever else is queued by then. Frames are sent from where they were read."""
        batch = self._batch
        receive = batch.receive
        ready = self._ready_to_send
        rx = self.rx
        clock = time.monotonic
        watch = [conn.fileno()]  # a number: select calls fileno() on anything else
        sampled = tally.sampled
        check = clock() + CONTROL_POLL
        while True:
            try:
                count = receive(rx)
            except BlockingIOError:  # the blocking read timed out
                now = clock()
                if _stream_ends(now, stats_due, last_frame, watch):
                    return
                check = now + CONTROL_POLL
                continue
            ready(batch, count, tally)
            self._send_batch(count)
            if len(sampled) >= SETTLE_SAMPLES:
                return
            last_frame = clock()
            if last_frame >= check:
                if last_frame >= stats_due or select.select(watch, [], [], 0)[0]:
                    return
                check = last_frame + CONTROL_POLL

    def stream_classified(self, conn: Connection, stats_due: float, last_frame: float) -> None:
        """Stream while nothing is held but the pipeline is not `straight` (there are flow
        rules, or a link that would hold a frame): up to mmsg.BATCH frames a blocking read,
        through `_take_batch`. Returns as `_stream_batches` does, and as soon as a link
        holds a frame: its release needs `select`'s timeouts."""
        pipeline = self.pipeline
        rx = self.rx
        clock = time.monotonic
        watch = [conn.fileno()]  # a number: select calls fileno() on anything else
        check = clock() + CONTROL_POLL
        while True:
            try:
                count = self._batch.receive(rx)
            except BlockingIOError:  # the blocking read timed out
                now = clock()
                if _stream_ends(now, stats_due, last_frame, watch):
                    return
                check = now + CONTROL_POLL
                continue
            self._take_batch(count, clock())
            last_frame = clock()
            if not pipeline.idle:
                return
            if last_frame >= check:
                if last_frame >= stats_due or select.select(watch, [], [], 0)[0]:
                    return
                check = last_frame + CONTROL_POLL

    def stream_line(self, conn_fd: int, stats_due: float) -> None:
        """While the pipeline is a delay line (`DirectionPipeline.delay_line`) and holds
        frames: sleep until the next run is due, send it, and nothing else. New frames are
        read (and held) at most every half the latency (at most DEFER_MAX): at the last
        wake-up for a release before then, or at a wake-up of its own if none comes. Their
        kernel stamps keep their arrival times, so a stream of 1000 frames a second through
        20 ms costs a wake-up and a send per frame and a read per 5 ms, not a read per frame:
        after a sleep every line of Python run is read from memory again (this machine's
        caches are cold by then), so the round is kept short. Returns when stats are due,
        when a message waits on the pipe (`conn_fd`: looked at on every sleep, and every
        CONTROL_POLL while something is due at every round), or when nothing is held."""
        pipeline = self.pipeline
        link = pipeline.delay_line
        if link is None:
            return
        clock = _clock_at_most  # what is due by its reading is due (see `_clock_at_most`)
        watch = [conn_fd]
        read_gap = min(DEFER_MAX, pipeline.read_slack / 2)
        read_by = clock()  # what came since the caller last read: at the first round
        check = read_by + CONTROL_POLL
        due = link.next_event()
        while True:
            now = clock()
            wake = read_by if due is None or read_by < due else due
            if stats_due < wake:
                wake = stats_due
            if wake > now:
                if select.select(watch, [], [], wake - now)[0]:
                    return
                now = clock()
                check = now + CONTROL_POLL
            elif now >= check:  # something is due at every round: busy, but not deaf
                if select.select(watch, [], [], 0)[0]:
                    return
                check = now + CONTROL_POLL
            if due is not None and due <= now:
                self.send_all(pipeline.release(now))
                due = link.next_event()
            # Read at the last wake-up before read_by, not at a wake-up of its own; with more
            # waiting than a drain takes, again at the next round.
            if due is None or due > read_by or now >= read_by:
                read_by = now if self.drain() else now + read_gap
                if due is None:
                    due = link.next_event()
                    if due is None:
                        return
            if now >= stats_due:
                return

    def _send_batch(self, count: int, start: int = 0, batch: FrameBatch | None = None) -> None:
        """Send the frames start..count-1 of `batch` (the read batch unless given), each
        failure as `send` handles it."""
        batch = batch or self._batch
        while start < count:
            try:
                start += batch.send(self.tx, start, count)
            except OSError as error:
                self._send_again(batch.frame(start), error)
                start += 1

    def send(self, frame: bytes | memoryview) -> None:
        try:
            self.tx.send(frame)
        except OSError as error:
            self._send_again(frame, error)

    def send_all(self, frames: list[bytes | HeldRun]) -> None:
        """Send released frames in order, mmsg.BATCH a system call when there are several
        (copied into the slots of a batch of their own: a copy costs far less than a call);
        runs of frames held in bulk go from where they were read (`_send_runs`)."""
        if len(frames) <= 1:
            if frames:
                frame = frames[0]
                if isinstance(frame, HeldRun):
                    self._send_runs(frames, 0, 1)
                else:
                    self.send(frame)
            return
        out = self._out_batch
        view, sizes = out.view, out.sizes
        index, total = 0, len(frames)
        while index < total:
            count = 0
            while index < total and count < BATCH:
                frame = frames[index]
                if isinstance(frame, HeldRun):
                    break
                size = len(frame)
                view[count * SLOT : count * SLOT + size] = frame
                sizes[count] = size
                count += 1
                index += 1
            if count:
                self._send_batch(count, batch=out)
            if index < total and isinstance(frames[index], HeldRun):
                end = index + 1
                while end < total and isinstance(frames[end], HeldRun):
                    end += 1
                self._send_runs(frames, index, end)
                index = end

    def _send_runs(self, items: list[bytes | HeldRun], first: int, end: int) -> None:
        """Send the runs items[first:end] from their batches, runs that follow on in the same
        batch in one call; a batch whose runs have all gone is kept for reuse."""
        spares = self._spares
        fates = self.pipeline.fates
        index = first
        while index < end:
            run = cast(HeldRun, items[index])
            batch = cast(FrameBatch, run.batch)
            stop, runs = run.stop, 1
            index += 1
            while index < end:
                after = cast(HeldRun, items[index])
                if after.batch is not batch or after.start != stop:
                    break
                stop = after.stop
                runs += 1
                index += 1
            if fates is not None:  # a capture started while these were held
                self._note_runs(items[index - runs : index], time.monotonic())
            self._send_batch(stop, run.start, batch)
            batch.held_runs -= runs
            if batch.held_runs <= 0 and len(spares) < SPARE_BATCHES:
                spares.append(batch)
                self._spares_used = True

    def trim_spares(self) -> None:
        """Once traffic stopped: the spare batches beyond the SPARE_PAGES_KEPT taken last give
        their pages back (they stay, for the next stream, at no cost in memory)."""
        if self._spares_used:
            self._spares_used = False
            for batch in self._spares[:-SPARE_PAGES_KEPT]:
                batch.forget()

    def _note_runs(self, runs: list[bytes | HeldRun], now: float) -> None:
        """Note the frames of `runs` as forwarded in the capture that started while they were
        held (frames held in bulk have no fate of their own; each counts with its run's
        middle arrival)."""
        fates = self.pipeline.fates
        assert fates is not None
        for item in runs:
            run = cast(HeldRun, item)
            batch = cast(FrameBatch, run.batch)
            arrival = (run.first_arrival + run.last_arrival) / 2
            for index in range(run.start, run.stop):
                fates.note(batch.frame(index), arrival, FORWARDED, DEFAULT_LABEL, now - arrival)

    def _send_again(self, frame: bytes | memoryview, error: OSError) -> None:
        """After a send failed with `error`. ENOBUFS: the device queue is full for a moment;
        wait and retry rather than lose the frame. Anything else counts as a transmit error,
        and the first of each kind a minute is logged; an interface gone or down is raised, for
        the worker to wait for it (`run_forwarder`)."""
        for attempt in range(SEND_RETRIES):
            if error.errno not in (errno.ENOBUFS, errno.EAGAIN, errno.EINTR):
                break
            time.sleep(0.0001 * (attempt + 1))
            try:
                self.tx.send(frame)
                return
            except OSError as again:
                error = again
        self.tx_errors += 1
        if error.errno in LINK_ERRNOS:
            raise error
        now = time.monotonic()
        code = error.errno or 0
        if now - self._error_logged.get(code, -SEND_ERROR_LOG_INTERVAL) >= SEND_ERROR_LOG_INTERVAL:
            self._error_logged[code] = now
            self.note(
                "warning",
                f"cannot send a frame of {len(frame) - VNET_HDR_LEN} bytes on {self.tx_ifname}: "
                f"{error.strerror or error} (counted as tx_errors; the next of this kind is "
                "logged in a minute)",
            )

    def report(self, now: float, reports_dropped: int = 0) -> StatsReport:
        self._wall_offset = _wall_offset_now()  # follow NTP's adjustments
        if self.interface_state == "up" and self._packet_sockets:
            self.kernel_drops += kernel_drops(self.rx)
        stats = self.pipeline.stats(now, changed_only=True).model_copy(
            update={
                "pid": os.getpid(),
                "rx_kernel_drops": self.kernel_drops,
                "tx_errors": self.tx_errors,
                "interface_state": self.interface_state,
                "interface_problem": self.interface_problem,
                "reports_dropped": reports_dropped,
            }
        )
        return StatsReport(stats=stats)

    def note(self, level: Literal["info", "warning"], message: str) -> None:
        """A line for the engine's log, sent up with the next stats."""
        self.notes.append(WorkerNote(direction=self.direction, level=level, message=message))

    def send_report(self, outbox: Outbox, now: float) -> None:
        """Notes first, then stats, and the far ends once in FAR_ENDS_INTERVAL if they
        changed, through `outbox` (never waiting: the heartbeat the supervisor watches);
        OSError if the supervisor is gone."""
        notes, self.notes = self.notes, []
        for note in notes:
            outbox.post(note)
        self._post_fates(outbox)
        outbox.post(self.report(now, outbox.dropped))
        if self.pipeline.talkers_changed and now >= self._far_ends_due:
            self._far_ends_due = now + FAR_ENDS_INTERVAL
            far_ends = self.pipeline.far_ends()
            outbox.post(FarEnds(direction=self.direction, far_ends=far_ends))
        outbox.flush()

    def send_fates(self, outbox: Outbox) -> None:
        """What a running capture has noted since the last call (see engine.core.fates)."""
        self._post_fates(outbox)
        outbox.flush()

    def _post_fates(self, outbox: Outbox) -> None:
        fates = self.pipeline.fates
        if fates is None or not (fates.records or fates.lost or outbox.fates_lost):
            return
        records, lost = fates.take()
        lost += outbox.fates_lost  # those the supervisor could not take, told with the next
        outbox.fates_lost = 0
        for first in range(0, len(records), FATE_BATCH):
            batch = records[first : first + FATE_BATCH]
            # Records carry wall-clock seconds; the offset is kept in nanoseconds.
            data, labels = pack(batch, self._wall_offset / NANOSECONDS)
            outbox.post(FateRecords(
                direction=self.direction, count=len(batch),
                data=base64.b64encode(data).decode(), labels=labels, lost=lost,
            ))  # fmt: skip
            lost = 0
        if lost:
            outbox.post(FateRecords(direction=self.direction, count=0, data="", labels=[],
                                    lost=lost))  # fmt: skip

    def control(self, message: Message | None, now: float) -> bool:
        """Act on a message from the supervisor; False for Stop."""
        if isinstance(message, Stop):
            return False
        if isinstance(message, Configure):
            traces = traces_in_force(message.spec, message.trace_files)
            self.pipeline.configure(message.spec, now, traces)
            if self.interface_state == "up":
                self.follow_spec()
        elif isinstance(message, Flush) and message.direction in (None, self.direction):
            self.pipeline.flush(message.label)
        elif isinstance(message, StartCapture):
            self.pipeline.start_capture(message.snaplen, message.drops_only)
            self.follow_spec()
        elif isinstance(message, StopCapture):
            self.pipeline.stop_capture()
        elif isinstance(message, StatsPace):
            self.stats_pace = max(STATS_INTERVAL, message.interval)
            self.pipeline.pace_talkers(self.stats_pace)
        return True

    def lose_interfaces(self, opened: bool = True) -> None:
        """An interface went down or away: close both sockets (a deleted interface's socket
        stays dead even once one of the same name is back) until `_wait_for_interfaces`."""
        if opened:
            self.close()
        self.interface_state = "missing"
        self.interface_problem = "an interface went away"

    def close(self) -> None:
        if self.interface_state == "up":
            self.rx.close()
            self.tx.close()


def _arrival(stamp: int | None, now: float, wall_offset: int) -> float:
    """When a frame arrived, on the monotonic clock in seconds, never before its kernel stamp
    (wall-clock nanoseconds) if there is one and it is recent and not ahead (else the wall
    clock moved), or `now`."""
    if stamp is not None:
        arrival = seconds_at_least(stamp - wall_offset)
        if now - STAMP_WINDOW < arrival <= now:
            return arrival
    return now


def _wall_offset_now() -> int:
    """The wall clock less the monotonic one, in nanoseconds, read in that order: the later
    monotonic reading makes the offset too small if anything, so an arrival worked out from a
    stamp with it is late if anything, never early."""
    wall = time.time_ns()
    return wall - time.monotonic_ns()


def _clock_at_most() -> float:
    """The monotonic clock in seconds, rounded down (`time.monotonic` rounds to nearest): a
    release decided at this time is never before its deadline on the kernel's clock."""
    return seconds_at_most(time.monotonic_ns())


def _restore_tag(batch: FrameBatch, index: int) -> int:
    """Put the VLAN tag the kernel took off frame `index` of `batch` back in place (if it had
    one), in its slot, and return the frame's size; callers look first at the batch's
    `first_kinds` and `first_words`, which tell most untagged frames apart for less."""
    tag = batch.vlan_tag(index)
    if tag is not None:
        batch.sizes[index] = put_back_vlan_tag(batch.view, index * SLOT, batch.sizes[index], tag)
    return int(batch.sizes[index])


def _stream_ends(now: float, stats_due: float, last_frame: float, watch: list[int]) -> bool:
    """After a blocking read timed out: stop streaming when stats are due, when no frame came
    for STREAM_HOLD, or when a message from the supervisor waits."""
    return (
        now >= stats_due
        or now - last_frame >= STREAM_HOLD
        or bool(select.select(watch, [], [], 0)[0])
    )


PR_SET_TIMERSLACK = 29


def _tight_timers() -> None:
    """Ask the kernel to wake us on time: by default a sleeping process's timers may fire up
    to 50 µs late (timer slack), which would show in the packets' release times."""
    with contextlib.suppress(OSError, AttributeError):
        libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


def run_worker(
    direction: Direction,
    rx_ifname: str,
    tx_ifname: str,
    spec_json: str,
    trace_files_json: str,
    conn: Connection,
    precise: bool = False,
    sockets: tuple[socket.socket, socket.socket] | None = None,
    unshaped_port: int | None = None,
) -> None:
    """Process entry point (spawn context): forward until told to stop or the pipe closes."""
    # The supervisor owns the terminal's signals; a Ctrl-C must not kill workers mid-flight.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _tight_timers()
    try:
        spec = Spec.model_validate_json(spec_json)
        trace_files = {
            path: TraceFile.model_validate(fields)
            for path, fields in json.loads(trace_files_json).items()
        }
        forwarder = Forwarder(
            direction, rx_ifname, tx_ifname, spec, precise, sockets, unshaped_port, trace_files
        )
    except OSError as exc:
        conn.send_bytes(encode(WorkerError(direction=direction, message=str(exc))))
        raise SystemExit(1) from None
    # Everything made so far (modules, pydantic's validators) lives as long as the process: keep
    # it out of the cyclic collector, whose full passes would otherwise stall packets for ms.
    gc.freeze()
    try:
        run_forwarder(forwarder, conn)
    finally:
        forwarder.close()


def run_forwarder(forwarder: Forwarder, conn: Connection) -> None:
    """Forward while both interfaces are up; when one goes down or away (a read or a send
    says so), close both sockets, wait for both to be up again, open them afresh, and go on.
    What the links hold stays held meanwhile, and the spec keeps following the supervisor,
    whose messages are read from `conn`; the worker's go up through an `Outbox` on it."""
    outbox = Outbox(conn)
    try:
        _forward(forwarder, conn, outbox)
    finally:
        outbox.close()


def _forward(forwarder: Forwarder, conn: Connection, outbox: Outbox) -> None:
    while True:
        if forwarder.interface_state == "up":
            try:
                _loop(forwarder, conn, outbox)
                return
            except OSError as exc:
                if exc.errno not in LINK_ERRNOS:
                    raise
                forwarder.lose_interfaces()
                forwarder.note(
                    "warning",
                    f"{exc.strerror} on {forwarder.rx_ifname} or {forwarder.tx_ifname}: "
                    "both sockets closed until both are up",
                )
        if not _wait_for_interfaces(forwarder, conn, outbox):
            return


def _wait_for_interfaces(forwarder: Forwarder, conn: Connection, outbox: Outbox) -> bool:
    """Sleep until an interface changes (netlink) or LINK_RECHECK passes, then look again;
    stats and the supervisor's messages are served meanwhile. Each change of state is logged
    once. True once both sockets are open again; False when told to stop."""
    names = (forwarder.rx_ifname, forwarder.tx_ifname)
    watch = LinkWatch()
    said = ""
    next_stats = time.monotonic()
    interval = STATS_INTERVAL
    try:
        while True:
            state, problem = links_problem(names)
            if state == "up":
                try:
                    forwarder.open()
                except OSError as exc:  # gone again in between
                    if exc.errno not in LINK_ERRNOS:
                        raise
                    state, problem = "missing", f"cannot open {'/'.join(names)}: {exc.strerror}"
                else:
                    forwarder.interface_state, forwarder.interface_problem = "up", ""
                    forwarder.note("info", f"{names[0]} and {names[1]} are up: forwarding again")
                    return True
            forwarder.interface_state, forwarder.interface_problem = state, problem
            if problem != said:
                said = problem
                forwarder.note("warning", f"{problem}: nothing is forwarded until it is up")
            now = time.monotonic()
            if now >= next_stats:
                try:
                    forwarder.send_report(outbox, now)
                except OSError:
                    return False
                next_stats = now + interval
                interval = min(IDLE_STATS_INTERVAL, interval * 2)
            timeout = min(LINK_RECHECK, max(0.0, next_stats - now))
            watched: list[LinkWatch | Connection] = [watch, conn]
            readable = select.select(watched, [], [], timeout)[0]
            if watch in readable:
                watch.drain()
            if conn in readable:
                message = _receive(forwarder, conn)
                if not forwarder.control(message, time.monotonic()):
                    return False
                _acknowledge(forwarder, outbox, message)
                if isinstance(message, StatsPace):
                    interval = forwarder.stats_pace
                    next_stats = time.monotonic()  # at once, as `_loop` does
    finally:
        watch.close()


def _acknowledge(forwarder: Forwarder, outbox: Outbox, message: Message | None) -> None:
    """Tell the supervisor a Configure is in force (the pipe gone: the loop ends anyway)."""
    if isinstance(message, Configure):
        outbox.post(Configured(direction=forwarder.direction, generation=message.generation))
        with contextlib.suppress(OSError):
            outbox.flush()


def _receive(forwarder: Forwarder, conn: Connection) -> Message | None:
    """The next message from the supervisor: Stop if it is gone (the pipe closed), None for
    one that cannot be read (a bug: both sides speak engine.protocol.messages), which is
    reported to the supervisor's log instead of dropped unseen."""
    try:
        return decode(conn.recv_bytes())
    except (EOFError, OSError):
        return Stop()
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        forwarder.note(
            "warning", f"ignored a message: {errors[0]['msg'] if errors else 'not a message'}"
        )
        return None


def _loop(forwarder: Forwarder, conn: Connection, outbox: Outbox) -> None:
    """Two ways to wait. Holding frames, or idle: `select` on the socket and the pipe, with a
    timeout to the next release (exact, microseconds) or the next stats; a delay line that
    holds frames has a shorter round of its own (`Forwarder.stream_line`). Streaming (frames
    went by in the last STREAM_HOLD and nothing is held): a blocking read, which wakes faster
    and costs two system calls less per frame than `select` plus a non-blocking read, with
    the pipe looked at every CONTROL_POLL."""
    pipeline = forwarder.pipeline
    rx: socket.socket = forwarder.rx
    # File numbers: `select` calls fileno() (Python code, for a Connection) on anything else.
    rx_fd, conn_fd = rx.fileno(), conn.fileno()
    watched = [rx_fd, conn_fd]
    watched_pipe = [conn_fd]
    next_stats = time.monotonic()
    reported_frames = -1
    streaming = False
    seen_frames = pipeline.frames_seen
    last_traffic = -STREAM_HOLD
    # By default a worker sleeps until a release is due (a timer is never early), so it never
    # polls; `--precise` wakes as early as this machine's timers run late, and polls the rest.
    margin = WakeMargin(time.monotonic(), ceiling=CEILING) if forwarder.precise else None
    while True:
        now = time.monotonic()
        stream = now - last_traffic < STREAM_HOLD and pipeline.idle
        if stream != streaming:
            rx.setblocking(stream)
            streaming = stream
        if streaming:
            if pipeline.straight:
                forwarder.stream_straight(conn, next_stats, last_traffic)
            else:
                forwarder.stream_classified(conn, next_stats, last_traffic)
            # select() itself: Connection.poll builds a selector object on every call.
            control = bool(select.select(watched_pipe, [], [], 0)[0])
        elif (
            margin is None
            and pipeline.delay_line is not None
            and pipeline.read_slack >= DEFER_MIN
            and not pipeline.idle
        ):  # (with `--precise`, the round below: it polls before releases)
            forwarder.stream_line(conn_fd, next_stats)
            control = bool(select.select(watched_pipe, [], [], 0)[0])
        else:
            wake = next_stats
            deadline = pipeline.next_deadline()
            early = margin.value if margin is not None else 0.0
            if deadline is not None and deadline - early < wake:
                wake = deadline - early  # then poll without sleeping until it is due
            # While links hold frames for at least DEFER_MIN, new frames wait unread for the
            # next wake-up (a release, or read_by at the latest): one wake-up, not two, a frame.
            deferring = deadline is not None and pipeline.read_slack >= DEFER_MIN
            if deferring:
                read_by = now + min(DEFER_MAX, pipeline.read_slack / 2)
                if read_by < wake:
                    wake = read_by
            timeout = wake - now
            readable, _, _ = select.select(
                watched_pipe if deferring else watched, [], [], max(0.0, timeout)
            )
            if margin is not None and not readable and timeout > 0:  # how late did it end?
                woke = time.monotonic()
                margin.observe(woke - wake, woke)
            if deferring:
                # What is due leaves before the frames that waited unread are handled (they may
                # be many); the queue is not worked past them until they are read.
                forwarder.send_all(pipeline.release(_clock_at_most(), serialise=False))
                forwarder.drain(releasing=True)
            elif rx_fd in readable:
                forwarder.drain()
            if margin is not None and not readable and timeout <= 0:
                os.sched_yield()  # polling before a release (--precise): let others run (README)
            control = conn_fd in readable
        now = _clock_at_most()
        if control:
            message = _receive(forwarder, conn)
            if not forwarder.control(message, now):
                return
            _acknowledge(forwarder, outbox, message)
            if isinstance(message, StatsPace):
                next_stats = now  # at once: someone asked, or started watching
        if pipeline.frames_seen != seen_frames:
            seen_frames = pipeline.frames_seen
            last_traffic = now
        forwarder.send_all(pipeline.release(now))
        if pipeline.fates is not None and len(pipeline.fates.records) >= FATE_BATCH:
            try:
                forwarder.send_fates(outbox)
            except OSError:
                return
        if now >= next_stats:
            try:
                forwarder.send_report(outbox, now)
            except OSError:
                return
            idle = pipeline.frames_seen == reported_frames and pipeline.next_deadline() is None
            if idle:
                forwarder.trim_spares()
            reported_frames = pipeline.frames_seen
            next_stats += forwarder.stats_pace
            if next_stats < now:
                next_stats = now + forwarder.stats_pace
