"""The counters' endpoints: a snapshot, the interfaces, a live stream (server-sent events),
the seed's traffic profiles and the Prometheus page."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import queue
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Query, Request
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
from engine.web.common import Engine, EventStreamResponse, spec_in_force

STREAM_QUEUE = 256
#: `/metrics` lists this many links (the busiest first) unless `?links=N` asks for more.
METRICS_LINKS, METRICS_LINKS_MAX = 100, 10_000


def stats_routes(engine: Engine) -> APIRouter:
    router = APIRouter()

    @router.get("/stats", response_model=EngineStats, summary="Counters of both directions")
    def get_stats() -> EngineStats:
        reply = engine.handle(GetStats())
        assert isinstance(reply, StatsReply)
        return reply.stats

    @router.get("/info", response_model=Info, summary="Interfaces and processes")
    def get_info() -> Message:
        return engine.handle(GetInfo())

    @router.get("/stats/stream", response_class=EventStreamResponse,
             summary="Server-sent events: stats samples and spec changes")  # fmt: skip
    async def stream(request: Request, seconds: float = Query(0, ge=0)) -> StreamingResponse:
        inbox: queue.Queue[Message] = queue.Queue(STREAM_QUEUE)

        def on_message(message: Message) -> None:
            with contextlib.suppress(queue.Full):
                inbox.put_nowait(message)

        unlisten = engine.listen(on_message)
        loop = asyncio.get_running_loop()

        async def events() -> AsyncIterator[str]:
            deadline = loop.time() + seconds if seconds else None
            try:
                while not await request.is_disconnected():
                    if deadline is not None and loop.time() > deadline:
                        return
                    try:
                        message = await loop.run_in_executor(None, inbox.get, True, 0.5)
                    except queue.Empty:
                        yield ": keep-alive\n\n"
                        continue
                    kind = "stats" if isinstance(message, StatsReport) else "spec"
                    yield f"event: {kind}\ndata: {message.model_dump_json()}\n\n"
            finally:
                unlisten()

        return EventStreamResponse(events())

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
            _metrics(spec_in_force(engine), reply.stats, links),
            media_type="text/plain; version=0.0.4",
        )

    return router


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
