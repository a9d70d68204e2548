"""The worker's side of its pipe to the supervisor, and the supervisor's reader of it: the
data plane never waits for the control plane.

A worker writes its reports without ever blocking (`Outbox`): when the supervisor does not
read (stopped, busy, swapped out) and the pipe is full, what it cannot take waits in a bounded
outbox, where a newer stats report supersedes an older one (counters are cumulative, and the
links a report left out are merged in), and fate records beyond the bound are dropped and
counted as lost. Frames are written as `multiprocessing.connection` writes them (a 4-byte
big-endian length, then the bytes), each either whole or not begun: a frame the socket took
in part is finished before any other is begun, and only frames not begun are ever dropped.
The supervisor reads them without blocking either (`FrameReader`): a frame that has arrived
in part waits in its buffer for the rest, so a worker stopped mid-frame holds nobody up.
"""

from __future__ import annotations

import os
import socket
import struct
from collections import deque
from multiprocessing.connection import Connection

from engine.protocol.messages import (
    Configured,
    FarEnds,
    FateRecords,
    Message,
    StatsReport,
    encode,
)

#: Bytes of fate records and log lines a worker keeps for a supervisor that does not read
#: (beyond what the pipe holds, some 200 kB): a few seconds of a capture of every frame at
#: 1000 frames a second; what does not fit is dropped (and counted).
OUTBOX_BYTES = 1 << 20
#: The supervisor reads at most this many bytes from one worker at a time before it looks at
#: the other worker and its signals again (a report of thousands of links is some 1 MB).
READ_CHUNK = 1 << 16
READS_AT_ONCE = 32

_LENGTH = struct.Struct("!i")


def _frame(message: Message) -> bytes:
    payload = encode(message)
    return _LENGTH.pack(len(payload)) + payload


class Outbox:
    """Messages from a worker to its supervisor: `post` them, then `flush` once per batch
    (never per frame). `flush` writes what the pipe takes now and returns; OSError only when
    the supervisor is gone."""

    def __init__(self, conn: Connection) -> None:
        # A socket object of our own on the pipe's socket, for MSG_DONTWAIT: non-blocking
        # per call, so the worker's blocking reads of the same socket are not affected.
        self._socket = socket.socket(fileno=os.dup(conn.fileno()))
        #: What is left to write of a frame the socket took in part.
        self._begun = memoryview(b"")
        #: Log lines and fate records, in order, as frames; `_queued` bytes of them.
        self._queue: deque[bytes] = deque()
        self._queued = 0
        #: The newest of each kind that supersedes its predecessors, not begun yet.
        self._configured: Configured | None = None
        self._far_ends: FarEnds | None = None
        self._report: StatsReport | None = None
        #: Reports and log lines the supervisor never got (superseded or dropped).
        self.dropped = 0
        #: Fate records dropped here, to be told in the next FateRecords' `lost`.
        self.fates_lost = 0

    def post(self, message: Message) -> None:
        """Keep `message` for the next `flush` (or drop it, counted, if there is no room)."""
        if isinstance(message, StatsReport):
            self._report = self._merged(message)
        elif isinstance(message, Configured):
            self._configured = message  # a later generation says the earlier ones are in force
        elif isinstance(message, FarEnds):
            self.dropped += self._far_ends is not None
            self._far_ends = message
        else:
            frame = _frame(message)
            if self._queued + len(frame) > OUTBOX_BYTES:
                if isinstance(message, FateRecords):
                    self.fates_lost += message.count + message.lost
                else:
                    self.dropped += 1
                return
            self._queue.append(frame)
            self._queued += len(frame)

    def _merged(self, report: StatsReport) -> StatsReport:
        """`report`, with the links that only its unsent predecessor carried (a worker sends
        only the links that changed since its last report)."""
        before = self._report
        if before is None:
            return report
        self.dropped += 1
        if not report.stats.flows_changed_only:
            return report
        flows = {**before.stats.flows, **report.stats.flows}
        return StatsReport(stats=report.stats.model_copy(update={"flows": flows}))

    def _next(self) -> bytes | None:
        if self._queue:
            frame = self._queue.popleft()
            self._queued -= len(frame)
            return frame
        for name in ("_configured", "_far_ends", "_report"):
            message: Message | None = getattr(self, name)
            if message is not None:
                setattr(self, name, None)
                return _frame(message)
        return None

    def flush(self) -> None:
        """Write what the pipe takes without waiting: a frame begun first, then the others."""
        try:
            while True:
                if not self._begun:
                    frame = self._next()
                    if frame is None:
                        return
                    self._begun = memoryview(frame)
                sent = self._socket.send(self._begun, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
                self._begun = self._begun[sent:]
        except BlockingIOError:
            return

    @property
    def pending(self) -> bool:
        return bool(self._begun or self._queue or self._configured or self._far_ends
                    or self._report)  # fmt: skip

    def close(self) -> None:
        self._socket.close()


class FrameReader:
    """The supervisor's reader of a worker's pipe: whole frames as they have arrived, without
    waiting for the rest of one that has arrived in part."""

    def __init__(self, conn: Connection) -> None:
        self._socket = socket.socket(fileno=os.dup(conn.fileno()))
        self._buffer = bytearray()

    def read(self) -> list[bytes]:
        """The frames complete now; EOFError once the worker's end is closed and all is read."""
        ended = False
        for _ in range(READS_AT_ONCE):
            try:
                chunk = self._socket.recv(READ_CHUNK, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if not chunk:
                ended = True
                break
            self._buffer += chunk
            if len(chunk) < READ_CHUNK:
                break
        frames: list[bytes] = []
        buffer = self._buffer
        at = 0
        while len(buffer) - at >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer, at)
            if len(buffer) - at - _LENGTH.size < size:
                break
            frames.append(bytes(buffer[at + _LENGTH.size : at + _LENGTH.size + size]))
            at += _LENGTH.size + size
        del buffer[:at]
        if ended and not frames:
            raise EOFError
        return frames

    def close(self) -> None:
        self._socket.close()
