"""Intake: frames read from the receive socket a batch at a time, prepared for the pipeline in
one call to the core (`engine.core.batch`), and handed on: held in bulk by a link that only
delays, or forwarded frame by frame with what the pipeline lets through sent at once. What
falls due while a batch is taken leaves meanwhile.
"""

from __future__ import annotations

import math
import socket
import time

from engine.core.batch import (
    BatchLayout,
    bulk_weight,
    held_runs,
    prepared,
    ready_to_send,
)
from engine.core.deadlines import seconds_at_most
from engine.core.far_ends import StraightTally
from engine.daemon.worker.sender import Sender
from engine.daemon.worker.state import wall_offset_now
from engine.kernel.afpacket import PACKET_AUXDATA, TP_STATUS_VLAN_VALID, stamp_arrivals
from engine.kernel.mmsg import BATCH, SLOT, FrameBatch

RX_BATCH = 256
#: A time that never comes (`Intake.drain`: nothing to release meanwhile).
NEVER = math.inf
#: The receive batches' numbers, for the core that prepares them.
LAYOUT = BatchLayout(SLOT, PACKET_AUXDATA, TP_STATUS_VLAN_VALID)


class Intake(Sender):
    """Reads batches and hands them to the pipeline."""

    #: While a drain releases what falls due meanwhile: when that is (see `drain`).
    _due_meanwhile: float

    def _init_intake(self) -> None:
        self.stamped = False
        self._wall_offset = wall_offset_now()
        self._batch = FrameBatch()
        self._due_meanwhile = NEVER
        #: When a drain last found the socket empty (the fast path's hand-over waits for it).
        self.emptied_at = 0.0

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
        treat it as on arrival, however late it is read (see `loop._loop`: reads wait while links
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
                    self.emptied_at = time.monotonic()
                    return False
                self._take_batch(count, time.monotonic())
                if count < BATCH:
                    self.emptied_at = time.monotonic()
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
        released = pipeline.release(clock_at_most(), serialise=False)
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
        those that arrived within GATHER of each other (`engine.core.batch.held_runs`): no
        copy and no pipeline call per frame. False (and nothing done) if they do not fit the
        link's held-bytes limits."""
        pipeline = self.pipeline
        if not pipeline.can_hold(bulk_weight(sum(batch.sizes[:count]), count)):
            return False
        tally = pipeline.tally()
        runs = held_runs(batch, count, now, tally, self.stamped, self._wall_offset, LAYOUT)
        batch.held_runs = len(runs)
        pipeline.hold(runs, tally)
        return True

    def _ready_to_send(self, batch: FrameBatch, count: int, tally: StraightTally) -> list[int]:
        """`engine.core.batch.ready_to_send` for a batch read from this forwarder's socket."""
        return ready_to_send(batch, count, tally, self.stamped, LAYOUT)

    def _forward_batch(self, count: int, now: float) -> None:
        """Pass the `count` frames just read to the pipeline, each with its arrival time (the
        kernel's stamp where links hold frames, else `now`), and send those it lets through
        at once, in runs of one `sendmmsg`, from where they were read."""
        batch = self._batch
        arrivals = prepared(batch, count, now, self.stamped, self._wall_offset, LAYOUT)
        sizes = batch.sizes
        view = batch.view
        forward = self.pipeline.forward
        due = self._due_meanwhile
        clock = time.monotonic
        run = 0  # frames run..index-1 go out together
        start = 0
        for index in range(count):
            if not forward(view[start : start + sizes[index]], arrivals[index]):
                # held (a copy) or dropped: not sent
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
        if self.pipeline.back:
            self.send_back()


def clock_at_most() -> float:
    """The monotonic clock in seconds, rounded down (`time.monotonic` rounds to nearest): a
    release decided at this time is never before its deadline on the kernel's clock."""
    return seconds_at_most(time.monotonic_ns())
