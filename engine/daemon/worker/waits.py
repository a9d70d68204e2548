"""How a worker waits for frames, chosen by `engine.daemon.worker.loop` at every round:
streaming with blocking reads while frames stream through and nothing is held (straight:
each frame out the moment it is read; classified: a batch at a time through the pipeline),
a delay line's short round of releases and deferred reads (`stream_line`), and otherwise a
sleep in `select` until the next release or stats, which with `run --precise` wakes early
and polls the rest (`sleep_until_due`).
"""

from __future__ import annotations

import os
import select
import socket
import time
from multiprocessing.connection import Connection

from engine.core.batch import restore_tag
from engine.core.far_ends import SETTLE_SAMPLES, StraightTally
from engine.core.frames import mark_partial_checksum
from engine.core.wake_margin import WakeMargin
from engine.daemon.worker.intake import Intake, clock_at_most
from engine.kernel.afpacket import PACKET_AUXDATA, TP_STATUS_VLAN_VALID
from engine.kernel.mmsg import SLOT

#: Streaming (see `engine.daemon.worker.loop`) goes on this long after the last frame, then
#: the worker sleeps in `select` again: an idle engine makes no wake-ups.
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


class Waits(Intake):
    """The ways to wait for frames and releases."""

    #: Whether the last stretch of streaming had sparse frames (under POLL_BELOW_RATE a
    #: second): then frames are read one at a time, and polled for (POLL_WINDOW).
    sparse: bool
    #: Poll for the next frame until then (see `stream_straight`).
    poll_until: float

    def _init_waits(self) -> None:
        self.sparse = True
        self.poll_until = 0.0

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
                    size = restore_tag(batch, 0, SLOT)  # see `ready_to_send`
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
        clock = clock_at_most  # what is due by its reading is due (see `clock_at_most`)
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

    def sleep_until_due(
        self,
        now: float,
        rx_fd: int,
        conn_fd: int,
        stats_due: float,
        margin: WakeMargin | None,
    ) -> bool:
        """Holding frames, or idle: `select` on the socket (`rx_fd`) and the pipe (`conn_fd`),
        with a timeout to the next release (exact, microseconds) or `stats_due`; then read
        what came, and release what is due before the frames that waited unread. With
        `margin` (`--precise`), wake as early as this machine's timers run late, and poll
        the rest. True if a message waits on the pipe."""
        pipeline = self.pipeline
        wake = stats_due
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
        # File numbers: `select` calls fileno() (Python code, for a Connection) on anything else.
        watched = [conn_fd] if deferring else [rx_fd, conn_fd]
        readable, _, _ = select.select(watched, [], [], max(0.0, timeout))
        if margin is not None and not readable and timeout > 0:  # how late did it end?
            woke = time.monotonic()
            margin.observe(woke - wake, woke)
        if deferring:
            # What is due leaves before the frames that waited unread are handled (they may
            # be many); the queue is not worked past them until they are read.
            self.send_all(pipeline.release(clock_at_most(), serialise=False))
            self.drain(releasing=True)
        elif rx_fd in readable:
            self.drain()
        if margin is not None and not readable and timeout <= 0:
            os.sched_yield()  # polling before a release (--precise): let others run (README)
        return conn_fd in readable


def _stream_ends(now: float, stats_due: float, last_frame: float, watch: list[int]) -> bool:
    """After a blocking read timed out: stop streaming when stats are due, when no frame came
    for STREAM_HOLD, or when a message from the supervisor waits."""
    return (
        now >= stats_due
        or now - last_frame >= STREAM_HOLD
        or bool(select.select(watch, [], [], 0)[0])
    )
