"""`/stats/stream`'s machinery: one listener on the engine for every reader, each message
encoded once, and a bounded backlog per reader so a slow one loses only its own."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable

from engine.protocol.messages import Message, StatsReport, WorkerRestarted
from engine.web.common import Engine, Slots

#: Most `/stats/stream` readers at once: a page or a dashboard or two per person watching the
#: link; each is a connection and a backlog.
MAX_STREAMS = 64
#: A reader's backlog, at most this many messages and this many bytes: a slow reader loses the
#: newest messages beyond it (counted). The text is encoded once and shared by every reader's
#: backlog, so the bytes bound each reader, not the sum.
STREAM_BACKLOG = 256
STREAM_BACKLOG_BYTES = 8 * 1024 * 1024
#: A reader whose backlog has stayed full this long is ended (it reads nothing, or too little).
STREAM_STALL_SECONDS = 30.0
#: An idle stream says `: keep-alive` this often (proxies close silent connections).
KEEP_ALIVE_SECONDS = 15.0
#: Messages from the engine waiting to be encoded: beyond it one is dropped (counted), since
#: the engine's thread that publishes must never wait for the API.
ENCODE_BACKLOG = 64


class StreamReader:
    """One `/stats/stream` reader: a bounded backlog of encoded events on its event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.backlog: deque[str] = deque()
        self.backlog_bytes = 0
        self.lost = 0
        self.ended = False
        self._full_since: float | None = None
        self._ready = asyncio.Event()

    def offer(self, text: str) -> bool:
        """Queue `text` (on the reader's loop); False if the backlog is full and it is lost."""
        full = len(self.backlog) >= STREAM_BACKLOG or (
            self.backlog and self.backlog_bytes + len(text) > STREAM_BACKLOG_BYTES
        )
        if full:
            self.lost += 1
            now = self.loop.time()
            if self._full_since is None:
                self._full_since = now
            elif now - self._full_since > STREAM_STALL_SECONDS:
                self.end()
            return False
        self._full_since = None
        self.backlog.append(text)
        self.backlog_bytes += len(text)
        self._ready.set()
        return True

    def end(self) -> None:
        self.ended = True
        self._ready.set()

    async def take(self, timeout: float) -> list[str]:
        """What waits, or nothing after `timeout` seconds (or once ended)."""
        if not self.backlog and not self.ended:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        self._ready.clear()
        taken = list(self.backlog)
        self.backlog.clear()
        self.backlog_bytes = 0
        return taken


class StatsBroadcaster:
    """One listener on the engine for every stream: each message is encoded once, in a thread
    of its own (not the engine's, not the event loop), and the text handed to each reader's
    backlog on its loop (one call per loop, not per reader)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.slots = Slots(MAX_STREAMS, "stats streams")
        self.encoded = 0
        self.delivered = 0
        self.lost = 0
        self.ended_slow = 0
        self._lock = threading.Lock()
        self._readers: dict[asyncio.AbstractEventLoop, set[StreamReader]] = {}
        self._inbox: queue.Queue[Message] = queue.Queue(ENCODE_BACKLOG)
        self._unlisten: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None

    @property
    def readers(self) -> int:
        with self._lock:
            return sum(len(readers) for readers in self._readers.values())

    def add(self, loop: asyncio.AbstractEventLoop) -> StreamReader:
        reader = StreamReader(loop)
        with self._lock:
            self._readers.setdefault(loop, set()).add(reader)
            first = self._unlisten is None
            if self._thread is None:
                self._thread = threading.Thread(target=self._encode_loop, daemon=True,
                                                name="http-stats-encoder")  # fmt: skip
                self._thread.start()
        if first:
            unlisten = self.engine.listen(self._on_message)
            with self._lock:
                self._unlisten = unlisten
        return reader

    def remove(self, reader: StreamReader) -> None:
        with self._lock:
            readers = self._readers.get(reader.loop, set())
            readers.discard(reader)
            if not readers:
                self._readers.pop(reader.loop, None)
            unlisten = None
            if not self._readers:  # no one reads: the engine need not publish for the API
                unlisten, self._unlisten = self._unlisten, None
        if unlisten is not None:
            unlisten()

    def _on_message(self, message: Message) -> None:
        """In the engine's thread: hand over, never wait."""
        try:
            self._inbox.put_nowait(message)
        except queue.Full:
            with self._lock:
                self.lost += sum(len(readers) for readers in self._readers.values())

    def _encode_loop(self) -> None:
        while True:
            message = self._inbox.get()
            kind = "stats" if isinstance(message, StatsReport) else "spec"
            if isinstance(message, WorkerRestarted):
                kind = "worker_restarted"
            text = f"event: {kind}\ndata: {message.model_dump_json()}\n\n"
            with self._lock:
                self.encoded += 1
                targets = [(loop, list(readers)) for loop, readers in self._readers.items()]
            for loop, readers in targets:
                with contextlib.suppress(RuntimeError):  # a loop that has closed meanwhile
                    loop.call_soon_threadsafe(self._deliver, readers, text)

    def _deliver(self, readers: list[StreamReader], text: str) -> None:
        delivered = lost = ended = 0
        for reader in readers:
            if reader.ended:
                continue
            if reader.offer(text):
                delivered += 1
            else:
                lost += 1
                ended += reader.ended
        with self._lock:
            self.delivered += delivered
            self.lost += lost
            self.ended_slow += ended


async def stream_events(reader: StreamReader, seconds: float) -> AsyncIterator[str]:
    """A reader's server-sent events until it ends (or `seconds`, if not 0): the messages, a
    comment saying how many it lost, and `: keep-alive` when nothing came."""
    loop = reader.loop
    deadline = loop.time() + seconds if seconds else None
    said_lost = 0
    while not reader.ended:
        wait = KEEP_ALIVE_SECONDS
        if deadline is not None:
            wait = min(wait, deadline - loop.time())
            if wait <= 0:
                return
        texts = await reader.take(wait)
        if reader.lost > said_lost:
            yield f": {reader.lost - said_lost} messages lost (reading too slowly)\n\n"
            said_lost = reader.lost
        if not texts:
            yield ": keep-alive\n\n"
        for text in texts:
            yield text
