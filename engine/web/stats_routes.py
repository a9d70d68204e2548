"""The counters' endpoints: a snapshot, the interfaces, a live stream (server-sent events),
the seed's traffic profiles and the Prometheus page."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import queue
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from engine.model.spec import Direction, Spec
from engine.model.stats import EngineStats, LinkStats
from engine.protocol.messages import (
    GetInfo,
    GetProfile,
    GetStats,
    Info,
    Message,
    ProfileReply,
    StatsReply,
    StatsReport,
)
from engine.web.common import (
    ERROR_CONTENT,
    ApiError,
    Engine,
    EventStreamResponse,
    Slots,
    spec_in_force,
)

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
#: `/metrics` lists this many links (the busiest first) unless `?links=N` asks for more.
METRICS_LINKS, METRICS_LINKS_MAX = 100, 10_000


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


def stats_routes(engine: Engine) -> APIRouter:
    router = APIRouter()
    broadcaster = StatsBroadcaster(engine)

    @router.get("/stats", response_model=EngineStats, summary="Counters of both directions")
    def get_stats() -> EngineStats:
        reply = engine.handle(GetStats())
        assert isinstance(reply, StatsReply)
        return reply.stats

    @router.get("/info", response_model=Info, summary="Interfaces and processes")
    def get_info() -> Message:
        return engine.handle(GetInfo())

    @router.get("/stats/stream", response_class=EventStreamResponse,
             responses={503: {"model": ApiError, "description": "Too many streams",
                              "content": ERROR_CONTENT}},
             summary="Server-sent events: stats samples and spec changes")  # fmt: skip
    async def stream(seconds: float = Query(0, ge=0)) -> StreamingResponse:
        give_back = broadcaster.slots.take()
        loop = asyncio.get_running_loop()
        reader = broadcaster.add(loop)

        def close() -> None:
            broadcaster.remove(reader)
            give_back()

        async def events() -> AsyncIterator[str]:
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

        return EventStreamResponse(events(), on_close=close)

    @router.get("/top/{direction}.profile", response_class=Response,
                responses={200: {"content": {"application/octet-stream": {}}}},
                summary="The seed's traffic profile of a direction (flowtop)")  # fmt: skip
    def profile(direction: Direction) -> Response:
        """Per far end, the wire packets and bits seen, in the binary layout the seed's engine
        kept in its profile files and its client's `profiles.*.get()` reads."""
        reply = engine.handle(GetProfile(direction=direction))
        assert isinstance(reply, ProfileReply)
        return Response(base64.b64decode(reply.data), media_type="application/octet-stream")

    @router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text format")
    def metrics(
        links: int = Query(METRICS_LINKS, ge=1, le=METRICS_LINKS_MAX),
    ) -> PlainTextResponse:
        """Per-link series for the busiest `links` links (default first); the rest are in the
        totals and in `linkshaper_links`."""
        reply = engine.handle(GetStats())
        assert isinstance(reply, StatsReply)
        return PlainTextResponse(
            _metrics(spec_in_force(engine), reply.stats, links) + _stream_metrics(broadcaster),
            media_type="text/plain; version=0.0.4",
        )

    return router


def _stream_metrics(broadcaster: StatsBroadcaster) -> str:
    """The streams' own figures: each message is encoded once however many read it."""
    return (
        "# HELP linkshaper_http_streams Readers of /stats/stream now.\n"
        "# TYPE linkshaper_http_streams gauge\n"
        f"linkshaper_http_streams {broadcaster.readers}\n"
        "# HELP linkshaper_http_stream_messages_total Stream messages encoded (once for all "
        "readers), handed to readers, and lost by readers too slow.\n"
        "# TYPE linkshaper_http_stream_messages_total counter\n"
        f'linkshaper_http_stream_messages_total{{stage="encoded"}} {broadcaster.encoded}\n'
        f'linkshaper_http_stream_messages_total{{stage="delivered"}} {broadcaster.delivered}\n'
        f'linkshaper_http_stream_messages_total{{stage="lost"}} {broadcaster.lost}\n'
        "# HELP linkshaper_http_streams_ended_total Streams ended because their reader stalled.\n"
        "# TYPE linkshaper_http_streams_ended_total counter\n"
        f"linkshaper_http_streams_ended_total {broadcaster.ended_slow}\n"
    )


def _busiest(stats: EngineStats, spec: Spec, limit: int) -> set[str]:
    """The labels of the `limit` links that carried the most bytes (default always first)."""
    carried: dict[str, int] = {"default": 1 << 62}
    for d in (stats.ingress, stats.egress):
        if d is not None:
            for label, link in d.flows.items():
                carried[label] = carried.get(label, 0) + link.bytes_in
    for flow in spec.flows:
        carried.setdefault(flow.label, 0)
    ranked = sorted(carried, key=lambda label: carried[label], reverse=True)
    return set(ranked[:limit])


def _metrics(spec: Spec, stats: EngineStats, limit: int = METRICS_LINKS) -> str:
    lines: list[str] = []
    shown = _busiest(stats, spec, limit)

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP linkshaper_{name} {help_text}")
        lines.append(f"# TYPE linkshaper_{name} {kind}")

    def sample(name: str, labels: dict[str, str], value: float) -> None:
        text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"linkshaper_{name}{{{text}}} {value:g}")

    directions = [d for d in (stats.ingress, stats.egress) if d is not None]
    # (name, kind, help, the extra label's name or "", (extra label value, value) per link)
    measured: tuple[tuple[str, str, str, str, Callable[[LinkStats], Any]], ...] = (
        ("packets_total", "counter", "Wire packets into and out of a link.", "stage",
         lambda link: (("in", link.packets_in), ("out", link.packets_out))),
        ("bytes_total", "counter", "Ethernet bytes into and out of a link.", "stage",
         lambda link: (("in", link.bytes_in), ("out", link.bytes_out))),
        ("drops_total", "counter", "Wire packets dropped, by cause.", "cause",
          lambda link: tuple(link.drops.model_dump().items())),
        ("packet_events_total", "counter",
         "Wire packets the AQM marked CE, and those duplicated, corrupted and reordered.", "event",
         lambda link: (("ecn_marked", link.ecn_marked), ("duplicated", link.duplicated),
                       ("corrupted", link.corrupted), ("reordered", link.reordered))),
        ("queue_packets", "gauge", "Wire packets waiting in a link's queue.", "",
         lambda link: (("", link.queue_packets),)),
        ("queue_delay_seconds", "gauge", "Time the queue's backlog takes to drain.", "",
         lambda link: (("", link.queue_delay_ms / 1000),)),
    )  # fmt: skip
    for name, kind, help_text, extra, values in measured:
        family(name, kind, help_text)
        for d in directions:
            for label, link in d.flows.items():
                if label not in shown:
                    continue
                for extra_value, value in values(link):
                    labels = {"direction": d.direction, "link": label}
                    if extra:
                        labels[extra] = extra_value
                    sample(name, labels, value)
    family(
        "kernel_drops_total", "counter", "Frames the kernel dropped before the engine read them."
    )
    for d in directions:
        sample("kernel_drops_total", {"direction": d.direction}, d.rx_kernel_drops)
    family("tx_errors_total", "counter", "Frames the engine could not send.")
    for d in directions:
        sample("tx_errors_total", {"direction": d.direction}, d.tx_errors)
    family(
        "delay_seconds",
        "gauge",
        "Measured arrival-to-release delay of the frames of the last stats window, by quantile.",
    )
    for d in directions:
        for quantile, value in (("0.5", d.delay_p50_ms), ("0.99", d.delay_p99_ms)):
            sample("delay_seconds", {"direction": d.direction, "quantile": quantile}, value / 1000)
    family("interface_up", "gauge", "1 while a direction's interfaces are up and it forwards.")
    for d in directions:
        sample("interface_up", {"direction": d.direction}, int(d.interface_state == "up"))
    family("worker_up", "gauge", "1 while a direction's worker reports; 0 stalled or restarting.")
    for d in directions:
        sample("worker_up", {"direction": d.direction}, int(d.worker_state == "running"))
    family("worker_stalls_total", "counter", "Times a worker was silent too long and restarted.")
    for d in directions:
        sample("worker_stalls_total", {"direction": d.direction}, d.worker_stalls)
    family("reports_dropped_total", "counter", "Reports a worker dropped: nobody was reading.")
    for d in directions:
        sample("reports_dropped_total", {"direction": d.direction}, d.reports_dropped)
    links = [("default", spec.default_link)]
    links += [(f.label, f.link) for f in spec.flows if f.label in shown]
    for name, help_text, pick in (
        ("rate_bits_per_second", "Configured rate.", lambda link: float(link.rate)),
        ("latency_seconds", "Configured latency.", lambda link: link.latency / 1000),
        ("jitter_seconds", "Configured jitter.", lambda link: link.jitter / 1000),
        ("loss_ratio", "Configured random loss.", lambda link: link.loss),
        ("duplicate_ratio", "Configured duplication.", lambda link: link.duplicate),
        ("corrupt_ratio", "Configured corruption.", lambda link: link.corrupt),
        ("reorder_ratio", "Configured netem-style reordering.", lambda link: link.reorder),
    ):
        family(name, "gauge", help_text)
        for label, pair in links:
            for direction in ("ingress", "egress"):
                sample(name, {"direction": direction, "link": label}, pick(pair.of(direction)))
    family("links", "gauge", "Links in the spec, and how many of them this page lists.")
    sample("links", {"listed": "all"}, len(spec.flows) + 1)
    sample("links", {"listed": "here"}, len(links))
    return "\n".join(lines) + "\n"
