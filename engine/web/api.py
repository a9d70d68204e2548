"""The HTTP API: the seed's `/qos` and `POST /`, plus patches, stats (JSON, a live stream,
Prometheus), timelines, OpenAPI and a small browser UI.

It runs inside `linkshaper run --http HOST:PORT` and speaks to the supervisor through the same
requests as every other client (`handle`), so a change made over HTTP is applied, published
and recorded exactly like one from the TUI or `linkshaper set`. Reading is open; changing
needs the token when one is set (`--http-token`, or `LINKSHAPER_HTTP_TOKEN`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import secrets
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Annotated, Any, Literal, Protocol

import uvicorn
from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from engine.model.spec import Direction, Spec, SpecError, describe_errors, patch_spec
from engine.model.stats import EngineStats, LinkStats
from engine.model.trace import TraceError, allowed_traces
from engine.protocol.control import Listeners
from engine.protocol.messages import (
    Done,
    Error,
    Flush,
    GetInfo,
    GetSpec,
    GetStats,
    Info,
    Message,
    PatchSpec,
    SetSpec,
    SpecChanged,
    SpecReply,
    StatsReply,
    StatsReport,
)
from engine.timelines.recorder import TimelineRecorder
from engine.timelines.replay import MAX_SPEED, MIN_SPEED, ReplayRunner, ReplayStatus
from engine.timelines.timeline import TimelineError, parse_timeline

STREAM_QUEUE = 256
#: Largest request body read: a spec with thousands of flows, or a long timeline, is smaller.
MAX_BODY = 16 * 1024 * 1024
#: Most fields one PATCH may set.
MAX_PATCH_FIELDS = 1000
#: `/metrics` lists this many links (the busiest first) unless `?links=N` asks for more.
METRICS_LINKS, METRICS_LINKS_MAX = 100, 10_000


class Engine(Protocol):
    """What the API needs of the engine: answer a control request, and tell listeners."""

    def handle(self, request: Message) -> Message: ...

    def listen(self, callback: Callable[[Message], None]) -> Callable[[], None]: ...


class ApiError(BaseModel):
    error: str


class NdjsonResponse(PlainTextResponse):
    """A timeline: JSON Lines."""

    media_type = "application/x-ndjson"


class EventStreamResponse(StreamingResponse):
    """Server-sent events."""

    media_type = "text/event-stream"


#: Errors are JSON whatever the operation's own answers are (FastAPI would document them in
#: the operation's media type).
ERROR_CONTENT: dict[str, Any] = {
    "application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}
}
NOT_THERE: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiError, "description": "Not there", "content": ERROR_CONTENT}
}
TIMELINE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
}


def _one_line(exc: RequestValidationError) -> str:
    return describe_errors(exc.errors()) or "body: invalid"


class BodyLimit:
    """Refuse request bodies over `limit` bytes (413) before anything parses them: by the
    declared length, and by what actually arrives for a body sent in chunks."""

    def __init__(self, app: Any, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                response = JSONResponse({"error": _too_large(self.limit)}, status_code=413)
                await response(scope, receive, send)
                return
        seen = 0
        limit = self.limit

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # FastAPI passes an HTTPException through as it is
                    raise HTTPException(status_code=413, detail=_too_large(limit))
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> str:
    return f"body: larger than {limit} bytes"


class Timelines:
    """Recording to a temporary file and one replay at a time, for the API's endpoints."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.recorder: TimelineRecorder | None = None
        self.unlisten: Callable[[], None] | None = None
        self.runner: ReplayRunner | None = None

    def start_recording(self, stats: bool) -> None:
        with self.lock:
            self.stop_recording()
            fd, path = tempfile.mkstemp(prefix="linkshaper-", suffix=".jsonl")
            os.close(fd)
            recorder = TimelineRecorder(path, stats=stats)
            recorder.spec(_spec(self.engine), "http-record")

            def on_message(message: Message) -> None:
                if isinstance(message, SpecChanged):
                    recorder.spec(message.spec, message.source)
                elif isinstance(message, StatsReport):
                    recorder.stats(message.stats)

            self.recorder = recorder
            self.unlisten = self.engine.listen(on_message)

    def stop_recording(self) -> str | None:
        recorder, self.recorder = self.recorder, None
        if self.unlisten is not None:
            self.unlisten()
            self.unlisten = None
        if recorder is None:
            return None
        recorder.close()
        text = recorder.path.read_text()
        recorder.path.unlink(missing_ok=True)
        return text

    def recorded_so_far(self) -> str | None:
        return self.recorder.path.read_text() if self.recorder is not None else None

    def replay(self, text: str, speed: float, loop: bool) -> ReplayStatus:
        timeline = parse_timeline(text.splitlines(), name="timeline")
        runner = ReplayRunner(
            timeline,
            lambda spec: self.engine.handle(SetSpec(spec=spec, source="replay")),
            _spec(self.engine),
            speed=speed,
            loop=loop,
        )
        with self.lock:
            if self.runner is not None:
                self.runner.stop()
            self.runner = runner
        threading.Thread(target=runner.run, daemon=True, name="http-replay").start()
        return runner.status()


def _spec(engine: Engine) -> Spec:
    reply = engine.handle(GetSpec())
    assert isinstance(reply, SpecReply)
    return reply.spec


def _apply(engine: Engine, request: SetSpec | PatchSpec, trace_dir: str | None) -> Spec:
    """Apply a change from HTTP: traces only from `trace_dir` (see `trace.allowed_traces`)."""
    try:
        current = _spec(engine)
        if isinstance(request, SetSpec):
            request = request.model_copy(
                update={"spec": allowed_traces(request.spec, current, trace_dir)}
            )
        elif _may_name_trace(request.changes):  # else the supervisor's check is the only one
            patched = patch_spec(current, request.changes)
            checked = allowed_traces(patched, current, trace_dir)
            if checked is not patched:  # a trace's path made whole: apply the result
                request = SetSpec(spec=checked, source=request.source)
    except (SpecError, TraceError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    reply = engine.handle(request)
    if isinstance(reply, Error):
        raise HTTPException(status_code=422, detail=reply.message)
    assert isinstance(reply, SpecReply)
    return reply.spec


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


def _may_name_trace(changes: dict[str, Any]) -> bool:
    """Whether a patch can set a trace: a path that ends in one, or an object or a list."""
    return any(
        path.rsplit(".", 1)[-1] == "trace" or isinstance(value, dict | list)
        for path, value in changes.items()
    )


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
    family("interface_up", "gauge", "1 while a direction's interfaces are up and it forwards.")
    for d in directions:
        sample("interface_up", {"direction": d.direction}, int(d.interface_state == "up"))
    links = [("default", spec.default_link)]
    links += [(f.label, f.link) for f in spec.flows if f.label in shown]
    for name, help_text, pick in (
        ("rate_bits_per_second", "Configured rate.", lambda link: float(link.rate)),
        ("latency_seconds", "Configured latency.", lambda link: link.latency / 1000),
        ("jitter_seconds", "Configured jitter.", lambda link: link.jitter / 1000),
        ("loss_ratio", "Configured random loss.", lambda link: link.loss),
    ):
        family(name, "gauge", help_text)
        for label, pair in links:
            for direction in ("ingress", "egress"):
                sample(name, {"direction": direction, "link": label}, pick(pair.of(direction)))
    family("links", "gauge", "Links in the spec, and how many of them this page lists.")
    sample("links", {"listed": "all"}, len(spec.flows) + 1)
    sample("links", {"listed": "here"}, len(links))
    return "\n".join(lines) + "\n"


def create_http_app(
    engine: Engine, token: str | None = None, trace_dir: str | None = None
) -> FastAPI:
    """The API over `engine`; changes need `token` if one is set, and traces named over HTTP
    must be files in `trace_dir` (none: no new trace can be named over HTTP)."""
    app = FastAPI(
        title="linkshaper",
        summary="Shape a link live: the seed's /qos API and more.",
        description=(
            'Every error is `{"error": "one line naming the field and the reason"}`: 400 for '
            "a body that is not JSON at all, 422 for one that is not a valid request, 401 for "
            "a change without the token (when one is set), 404 for what is not there (no "
            "recording, no replay), 405 for a method a path does not take, 413 for a body over "
            f"{MAX_BODY} bytes."
        ),
        version="1",
        docs_url="/docs",
        responses={
            400: {"model": ApiError, "description": "Not JSON", "content": ERROR_CONTENT},
            413: {"model": ApiError, "description": "Too large", "content": ERROR_CONTENT},
            422: {"model": ApiError, "description": "Not valid", "content": ERROR_CONTENT},
        },
    )
    timelines = Timelines(engine)
    app.add_middleware(BodyLimit)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _one_line(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method the path takes, not just one route's
            headers["Allow"] = ", ".join(_allowed_methods(app, request))
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=headers)  # fmt: skip

    def may_change(
        authorization: Annotated[str | None, Header()] = None,
        x_linkshaper_token: Annotated[str | None, Header()] = None,
    ) -> None:
        """With a token set, changes need `Authorization: Bearer TOKEN` (or the X- header)."""
        if token is None:
            return
        given = x_linkshaper_token
        if authorization and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        # Bytes, not str: compare_digest raises on non-ASCII text, which would be a 500.
        if not given or not secrets.compare_digest(
            given.encode("utf-8", "surrogateescape"), token.encode()
        ):
            raise HTTPException(
                status_code=401, detail="a valid token is needed to change the link"
            )

    changes = [Depends(may_change)]
    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ApiError, "description": "No valid token", "content": ERROR_CONTENT},
    }

    @app.get("/", response_class=HTMLResponse, summary="The browser page")
    def page() -> str:
        return resources.files("engine.web").joinpath("index.html").read_text()

    @app.get("/qos", response_model=Spec, summary="The spec in force")
    def get_qos() -> Spec:
        return _spec(engine)

    @app.post("/qos", response_model=Spec, dependencies=changes, responses=errors,
              summary="Replace the whole spec (either seed format)")  # fmt: skip
    def post_qos(spec: Spec) -> Spec:
        return _apply(engine, SetSpec(spec=spec, source="http"), trace_dir)

    @app.post("/", response_model=Spec, dependencies=changes, responses=errors,
              summary="Replace the whole spec (the seed frontend's REST call)")  # fmt: skip
    def post_root(spec: Spec) -> Spec:
        return _apply(engine, SetSpec(spec=spec, source="http"), trace_dir)

    @app.patch("/qos", response_model=Spec, dependencies=changes, responses=errors,
               summary="Set single fields by dotted path, with units")  # fmt: skip
    def patch_qos(
        fields: Annotated[
            dict[str, Any],
            Body(examples=[{"egress.latency": "50ms", "ingress.rate": "10mbit"}]),
        ],
    ) -> Spec:
        if len(fields) > MAX_PATCH_FIELDS:
            raise HTTPException(
                status_code=422, detail=f"body: more than {MAX_PATCH_FIELDS} fields in one patch"
            )
        return _apply(engine, PatchSpec(changes=fields, source="http"), trace_dir)

    @app.post("/flush", dependencies=changes, responses={**errors, **NOT_THERE},
              summary="Drop the packets links hold, queued and delayed")  # fmt: skip
    def flush(
        direction: Annotated[Direction | None, Query()] = None,
        link: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, str]:
        reply = engine.handle(Flush(direction=direction, label=link))
        if isinstance(reply, Error):
            raise HTTPException(status_code=404, detail=reply.message)
        assert isinstance(reply, Done)
        return {"done": reply.message}

    @app.get("/stats", response_model=EngineStats, summary="Counters of both directions")
    def get_stats() -> EngineStats:
        reply = engine.handle(GetStats())
        assert isinstance(reply, StatsReply)
        return reply.stats

    @app.get("/info", response_model=Info, summary="Interfaces and processes")
    def get_info() -> Message:
        return engine.handle(GetInfo())

    @app.get("/stats/stream", response_class=EventStreamResponse,
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

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text format")
    def metrics(
        links: int = Query(METRICS_LINKS, ge=1, le=METRICS_LINKS_MAX),
    ) -> PlainTextResponse:
        """Per-link series for the busiest `links` links (default first); the rest are in the
        totals and in `linkshaper_links`."""
        reply = engine.handle(GetStats())
        assert isinstance(reply, StatsReply)
        return PlainTextResponse(
            _metrics(_spec(engine), reply.stats, links), media_type="text/plain; version=0.0.4"
        )

    @app.post("/timeline/record", dependencies=changes, responses=errors,
              summary="Start recording every change (and stats) on the server")  # fmt: skip
    def record_start(stats: bool = Query(False)) -> dict[str, str]:
        timelines.start_recording(stats)
        return {"recording": "started"}

    @app.get("/timeline/record", response_class=NdjsonResponse, responses=NOT_THERE,
             summary="The recording so far, as JSON Lines")  # fmt: skip
    def record_get() -> NdjsonResponse:
        text = timelines.recorded_so_far()
        if text is None:
            raise HTTPException(status_code=404, detail="not recording")
        return NdjsonResponse(text)

    @app.delete("/timeline/record", response_class=NdjsonResponse, dependencies=changes,
                responses={**errors, **NOT_THERE},
                summary="Stop recording; the timeline as JSON Lines")  # fmt: skip
    def record_stop() -> NdjsonResponse:
        with timelines.lock:
            text = timelines.stop_recording()
        if text is None:
            raise HTTPException(status_code=404, detail="not recording")
        return NdjsonResponse(text)

    @app.post("/timeline/replay", dependencies=changes, responses=errors,
              openapi_extra=TIMELINE_BODY,
              summary="Replay a timeline (JSON Lines body), checked whole first")  # fmt: skip
    async def replay_start(
        request: Request,
        speed: float = Query(1.0, ge=MIN_SPEED, le=MAX_SPEED),
        loop: bool = Query(False),
    ) -> dict[str, Any]:
        text = (await request.body()).decode(errors="replace")
        try:  # checking every step takes a while for a long timeline: not on the event loop
            status = await run_in_threadpool(timelines.replay, text, speed, loop)
        except TimelineError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return _status(status)

    @app.get("/timeline/replay", responses=NOT_THERE, summary="Where the replay is")
    def replay_status() -> dict[str, Any]:
        if timelines.runner is None:
            raise HTTPException(status_code=404, detail="no replay")
        return _status(timelines.runner.status())

    @app.post("/timeline/replay/{action}", dependencies=changes,
              responses={**errors, **NOT_THERE},
              summary="pause, resume or stop the replay")  # fmt: skip
    def replay_control(action: Literal["pause", "resume", "stop"]) -> dict[str, Any]:
        runner = timelines.runner
        if runner is None:
            raise HTTPException(status_code=404, detail="no replay")
        if action not in ("pause", "resume", "stop"):
            raise HTTPException(
                status_code=404, detail=f"action: {action!r} is not pause, resume or stop"
            )
        getattr(runner, action)()
        return _status(runner.status())

    return app


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods of all routes whose path matches the request's (Starlette's 405 names only
    those of the first such route, and each method here is a route of its own)."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _status(status: ReplayStatus) -> dict[str, Any]:
    return {
        "position": status.position, "total": status.total, "cycle": status.cycle,
        "elapsed": round(status.elapsed, 3), "next_at": status.next_at,
        "time_to_next": status.time_to_next, "paused": status.paused,
        "finished": status.finished, "speed": status.speed,
    }  # fmt: skip


class RemoteEngine:
    """The API's engine over a control socket (`linkshaper http`): requests on one connection,
    published messages from a subscription read by a thread."""

    def __init__(self, control: str) -> None:
        from engine.protocol.client import ControlClient

        self.control = control
        self._client = ControlClient(control)
        self._lock = threading.Lock()
        self._listeners = Listeners()
        self._subscription = ControlClient(control)
        threading.Thread(target=self._read, daemon=True, name="http-subscription").start()

    def handle(self, request: Message) -> Message:
        with self._lock:
            return self._client.request(request)

    def listen(self, callback: Callable[[Message], None]) -> Callable[[], None]:
        return self._listeners.add(callback)

    def _read(self) -> None:
        for message in self._subscription.subscribe():
            self._listeners.notify(message)


class HttpServer:
    """uvicorn in a thread of the engine's process."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="http")

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if self.server.started or not self.thread.is_alive():
                break
            deadline.wait(0.05)
        if not self.server.started:
            raise OSError(
                f"the HTTP API did not start on {self.server.config.host}:{self.server.config.port}"
            )

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


TOKEN_VARIABLE = "LINKSHAPER_HTTP_TOKEN"


def resolve_token(given: str | None) -> str | None:
    """The token changes need: the one given on the command line, else $LINKSHAPER_HTTP_TOKEN,
    else none (an empty one is none too)."""
    return given or os.environ.get(TOKEN_VARIABLE) or None


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (all addresses, said on purpose) or `PORT` (loopback only: the
    API can change the link, so it is not opened to the network by default); IPv6 as
    `[::1]:8080`."""
    host, colon, port = text.rpartition(":")
    host = host.strip("[]") or ("0.0.0.0" if colon else "127.0.0.1")
    try:
        number = int(port)
    except ValueError:
        raise SpecError(f"--http: {text!r} is not HOST:PORT") from None
    if not 0 < number < 65536:
        raise SpecError(f"--http: port {number} is out of range")
    return host, number
