"""The counters' endpoints: a snapshot, the interfaces, a live stream (server-sent events,
served by `stats_stream`), the seed's traffic profiles and the Prometheus page (`metrics`)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from engine.model.spec import Direction
from engine.model.stats import EngineStats
from engine.protocol.messages import (
    Error,
    GetInfo,
    GetProfile,
    GetStats,
    GetVersion,
    Info,
    Message,
    ProfileReply,
    StatsReply,
    Version,
)
from engine.web.common import ERROR_CONTENT, ApiError, Engine, EventStreamResponse, spec_in_force
from engine.web.metrics import (
    METRICS_LINKS,
    METRICS_LINKS_MAX,
    process_metrics,
    prometheus_text,
    stream_metrics,
)
from engine.web.stats_stream import StatsBroadcaster, stream_events

#: `linkshaper http` in front of an engine that predates GET /version.
OLDER_ENGINE: dict[int | str, dict[str, Any]] = {
    502: {"model": ApiError, "description": "The engine is older", "content": ERROR_CONTENT}
}


def stats_routes(engine: Engine) -> APIRouter:
    router = APIRouter()
    broadcaster = StatsBroadcaster(engine)

    @router.get("/stats", response_model=EngineStats, summary="Counters of both directions")
    def get_stats() -> EngineStats:
        reply = engine.handle(GetStats())
        assert isinstance(reply, StatsReply)
        return reply.stats

    _about_routes(router, engine)

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

        return EventStreamResponse(stream_events(reader, seconds), on_close=close)

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
        info = engine.handle(GetInfo())  # the processes' pids, for their CPU and memory
        return PlainTextResponse(
            prometheus_text(spec_in_force(engine), reply.stats, links)
            + stream_metrics(broadcaster)
            + (process_metrics(info) if isinstance(info, Info) else ""),
            media_type="text/plain; version=0.0.4",
        )

    return router


def _about_routes(router: APIRouter, engine: Engine) -> None:
    """What the engine is: its interfaces and processes, and its version."""

    @router.get("/info", response_model=Info, summary="Interfaces and processes")
    def get_info() -> Message:
        return engine.handle(GetInfo())

    @router.get("/version", response_model=Version, responses=OLDER_ENGINE,
                summary="The engine's linkshaper version")  # fmt: skip
    def get_version() -> Message:
        """The engine's: asked over its control socket when this API serves an engine that
        runs apart (`linkshaper http`), which may be older than the request (then 502)."""
        reply = engine.handle(GetVersion())
        if isinstance(reply, Error):
            raise HTTPException(status_code=502, detail=f"the engine did not say: {reply.message}")
        return reply
