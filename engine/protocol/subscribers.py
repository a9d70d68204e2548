"""Who gets what the engine publishes: a subscriber on a connection with its own bounded
outbox and sender thread, a capture read in this process, and in-process listeners.

A slow or vanished subscriber only loses its own samples; it never blocks the supervisor,
which must keep reading the workers' stats pipes.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

from engine.protocol.control import MAX_REQUEST
from engine.protocol.messages import CaptureLost, CaptureRequest, Message, decode, encode

OUTBOX_SIZE = 256
#: A capture subscriber's outbox, in batches (worker.FATE_BATCH records at most, about
#: 200 KB): what a capture that reads nothing costs the supervisor at most.
CAPTURE_OUTBOX_SIZE = 64
#: How often an idle subscriber's connection is looked at, to forget a client that went.
GONE_CHECK = 1.0

log = logging.getLogger("linkshaper")


class Outbox:
    """Published messages waiting for one subscriber, bounded: a slow one loses its own."""

    def __init__(self, capture: CaptureRequest | None) -> None:
        # A capture's messages are batches of up to a thousand records: fewer of them.
        size = OUTBOX_SIZE if capture is None else CAPTURE_OUTBOX_SIZE
        self.outbox: queue.Queue[bytes | None] = queue.Queue(size)
        #: A capture's subscriber gets fate records only (of its direction), others none.
        self.capture = capture
        #: Records that did not fit in the outbox since the last CaptureLost went out.
        self.lost = 0
        #: The newest spec change that did not fit in the outbox (see `offer`).
        self.latest: bytes | None = None

    def offer(self, data: bytes, latest_wins: bool = False) -> None:
        """Queue `data`; dropped when the subscriber is that far behind, unless `latest_wins`
        (a spec change): then the newest such one waits beside the full outbox and goes out
        next, so a reader that fell behind in a flood of changes still ends on the spec in
        force, never on one it replaced."""
        try:
            self.outbox.put_nowait(data)
        except queue.Full:
            if latest_wins:
                self.latest = data
        else:
            if latest_wins:
                self.latest = None  # a newer change is queued: the one beside is stale

    def take_latest(self) -> bytes | None:
        """The newest spec change that did not fit, once (see `offer`)."""
        latest, self.latest = self.latest, None
        return latest

    def offer_records(self, data: bytes, count: int) -> None:
        """Fate records: when the reader is too slow they are dropped and counted, and the
        count goes out (CaptureLost) as soon as there is room again."""
        try:
            if self.lost:
                self.outbox.put_nowait(encode(CaptureLost(records=self.lost)))
                self.lost = 0
            self.outbox.put_nowait(data)
        except queue.Full:
            self.lost += count

    def close(self) -> None:
        """Wake whoever waits on the outbox: nothing more comes."""
        with contextlib.suppress(queue.Full):
            self.outbox.put_nowait(None)


class Subscriber(Outbox):
    """A subscriber on a connection, served by a sender thread of its own."""

    def __init__(
        self,
        conn: Connection,
        on_gone: Callable[[Outbox], None],
        capture: CaptureRequest | None = None,
    ) -> None:
        super().__init__(capture)
        self.conn = conn
        self._on_gone = on_gone
        threading.Thread(target=self._send_loop, daemon=True, name="subscriber").start()

    def _send_loop(self) -> None:
        """Send until told to stop or the client goes; a client that goes while nothing is
        sent is noticed within GONE_CHECK (its end of the connection reads as closed)."""
        try:
            while True:
                try:
                    data = self.outbox.get(timeout=GONE_CHECK)
                except queue.Empty:
                    if self.conn.poll(0):  # a subscriber says nothing: this is its EOF
                        self.conn.recv_bytes(MAX_REQUEST)
                    continue
                if data is None:
                    break
                self.conn.send_bytes(data)
                if self.outbox.empty() and (latest := self.take_latest()) is not None:
                    self.conn.send_bytes(latest)
        except (OSError, EOFError):
            pass
        finally:
            self._on_gone(self)
            with contextlib.suppress(OSError):
                self.conn.close()


class CaptureFeed(Outbox):
    """A capture in this process (the HTTP API's, a capture to a file): fate records and
    CaptureLost, read with `get`, bounded as a socket subscriber's are."""

    def __init__(self, capture: CaptureRequest, on_gone: Callable[[Outbox], None]) -> None:
        super().__init__(capture)
        self._on_gone = on_gone

    def get(self, timeout: float) -> Message | None:
        """The next message, or None after `timeout` seconds."""
        try:
            data = self.outbox.get(timeout=timeout)
        except queue.Empty:
            return None
        return None if data is None else decode(data)

    def close(self) -> None:
        super().close()
        self._on_gone(self)


class Listeners:
    """In-process subscribers: callbacks that get every published message and must not block."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[Message], None]] = []

    def add(self, callback: Callable[[Message], None]) -> Callable[[], None]:
        """Returns the function that removes it again."""
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return remove

    def __len__(self) -> int:
        return len(self._callbacks)

    def notify(self, message: Message) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(message)
            except Exception:  # a listener's bug must not stop the engine's stats
                log.exception("listener failed")
