"""The sender: frames out on the transmit socket, several a system call where it can (from
where they were read, or copied into a batch of its own), runs held in bulk from their
batches, which are kept as spares for reuse once all their frames have gone; a failed send
waits and retries, counts, and is logged once a minute per kind.
"""

from __future__ import annotations

import errno
import time
from typing import cast

from engine.core.classifier import DEFAULT_LABEL
from engine.core.frames import VNET_HDR_LEN
from engine.core.packet import HeldRun
from engine.daemon.worker.state import ForwarderState
from engine.kernel.interface_state import LINK_ERRNOS
from engine.kernel.mmsg import BATCH, SLOT, FrameBatch
from engine.model.fates import FORWARDED

#: Receive batches kept for reuse once the frames they held have left (making one takes some
#: 0.1 ms, which a stream that holds a batch per wake-up would otherwise pay again and again).
#: Their pages are what the link held a moment ago (within its held-bytes limit); once the
#: traffic stops, all but SPARE_PAGES_KEPT give them back (`Sender.trim_spares`).
SPARE_BATCHES = 256
SPARE_PAGES_KEPT = 8
SEND_RETRIES = 200
#: A kind of send error (by errno) is written to the log at most this often; all are counted.
SEND_ERROR_LOG_INTERVAL = 60.0


class Sender(ForwarderState):
    """Sends released frames and runs; keeps the spare batches."""

    tx_errors: int
    _error_logged: dict[int, float]
    #: Whether a batch came back to the spares since `trim_spares`.
    _spares_used: bool
    #: Slots for released frames sent several at a time (`send_all`).
    _out_batch: FrameBatch

    def _init_sender(self) -> None:
        self.tx_errors = 0
        self._error_logged = {}
        self._spares = []
        self._spares_used = False
        self._out_batch = FrameBatch()

    def _send_batch(self, count: int, start: int = 0, batch: FrameBatch | None = None) -> None:
        """Send the frames start..count-1 of `batch` (the read batch unless given), each
        failure as `send` handles it."""
        if self.kernel_forwards:  # the kernel's redirect sent these (see worker.fast_path)
            sizes = (batch or self._batch).sizes
            self.sampled_frames += count - start
            self.sampled_bytes += sum(sizes[start:count]) - (count - start) * VNET_HDR_LEN
            return
        batch = batch or self._batch
        while start < count:
            try:
                start += batch.send(self.tx, start, count)
            except OSError as error:
                self._send_again(batch.frame(start), error)
                start += 1

    def send(self, frame: bytes | memoryview) -> None:
        if self.kernel_forwards:
            self.sampled_frames += 1
            self.sampled_bytes += len(frame) - VNET_HDR_LEN
            return
        try:
            self.tx.send(frame)
        except OSError as error:
            self._send_again(frame, error)

    def send_back(self) -> None:
        """Send what the links made for the ends frames come from (a TCP fault's RSTs) on
        the interface they are read from; one that fails is counted as a transmit error (the
        end then hears of the fault from its next segment, answered with another RST)."""
        back = self.pipeline.back
        for frame in back:
            try:
                self.rx.send(frame)
            except OSError as error:
                self.tx_errors += 1
                if error.errno in LINK_ERRNOS:
                    back.clear()
                    raise
        back.clear()

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
