"""The HTTP API: the seed's `/qos` and `POST /`, plus patches, stats (JSON, a live stream,
Prometheus), timelines, OpenAPI and a small browser UI.

It runs inside `linkshaper run --http HOST:PORT` and speaks to the supervisor through the same
requests as every other client (`handle`), so a change made over HTTP is applied, published
and recorded exactly like one from the TUI or `linkshaper set`. With a token set
(`--http-token`, or `LINKSHAPER_HTTP_TOKEN`) every request needs it, reads and streams as
changes, except OPEN_PATHS.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from engine.model.spec import describe_errors
from engine.web.capture_routes import capture_routes
from engine.web.common import ERROR_CONTENT, NOT_THERE, ApiError, Engine, spec_in_force
from engine.web.network_door import NetworkDoor
from engine.web.spec_routes import spec_routes
from engine.web.stats_routes import stats_routes
from engine.web.timeline_routes import timeline_routes

#: Largest request body read: a spec with thousands of flows, or a long timeline, is smaller.
MAX_BODY = 16 * 1024 * 1024
#: What a GET needs no token for even when one is set: the browser page (it asks for the
#: token itself), the API's description and a liveness probe's answer, none of which says
#: anything of the link, its traffic or the machine.
OPEN_PATHS = frozenset(
    {"/", "/control.html", "/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json"}
)


def create_http_app(
    engine: Engine, token: str | None = None, trace_dir: str | None = None
) -> FastAPI:
    """The API over `engine`; every request but OPEN_PATHS needs `token` if one is set, and
    traces named over HTTP must be files in `trace_dir` (none: no new trace can be named over
    HTTP)."""

    def may_use(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_linkshaper_token: Annotated[str | None, Header()] = None,
    ) -> None:
        """With a token set, a request needs `Authorization: Bearer TOKEN` (or the X- header):
        reads and streams as well as changes (what the link does, its traffic, captured
        frames, the machine's interfaces and processes are nobody else's business)."""
        if token is None or (request.method == "GET" and request.url.path in OPEN_PATHS):
            return  # not POST /: the seed's way to change the link
        given = x_linkshaper_token
        if authorization and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        # Bytes, not str: compare_digest raises on non-ASCII text, which would be a 500.
        if not given or not secrets.compare_digest(
            given.encode("utf-8", "surrogateescape"), token.encode()
        ):
            what = "read" if request.method == "GET" else "change"
            raise HTTPException(
                status_code=401, detail=f"a valid token is needed to {what} the link"
            )

    app = FastAPI(
        title="linkshaper",
        summary="Shape a link live: the seed's /qos API and more.",
        description=(
            'Every error is `{"error": "one line naming the field and the reason"}`: 400 for '
            "a body that is not JSON at all, 422 for one that is not a valid request, 401 for "
            "a request without the token (when one is set; only the page, /healthz and the "
            "API's description are open then), 404 for what is not there (no "
            "recording, no replay), 405 for a method a path does not take, 413 for a body over "
            f"{MAX_BODY} bytes."
        ),
        version="1",
        docs_url="/docs",
        dependencies=[Depends(may_use)],
        responses={
            400: {"model": ApiError, "description": "Not JSON", "content": ERROR_CONTENT},
            413: {"model": ApiError, "description": "Too large", "content": ERROR_CONTENT},
            422: {"model": ApiError, "description": "Not valid", "content": ERROR_CONTENT},
        },
    )
    app.add_middleware(BodyLimit)
    app.add_middleware(JsonBodies)

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

    changes = [Depends(may_use)]
    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ApiError, "description": "No valid token", "content": ERROR_CONTENT},
    }
    # Every router gets the engine through the network door: each change any of them sends
    # (POST, PATCH, a replay's steps) is stamped as the network's, for the supervisor's gate.
    engine = NetworkDoor(engine, trace_dir)
    app.include_router(spec_routes(engine, changes, errors))
    app.include_router(stats_routes(engine))
    app.include_router(timeline_routes(engine, changes, errors))
    app.include_router(capture_routes(engine, changes, {**errors, **NOT_THERE}))

    @app.get("/healthz", summary="Liveness: the engine answers (says nothing else)")
    def healthz() -> dict[str, bool]:
        spec_in_force(engine)  # a stuck or gone engine fails the probe
        return {"ok": True}

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


class JsonBodies:
    """A spec's body is JSON whatever its Content-Type says: `curl -d '{...}'` sends
    `application/x-www-form-urlencoded`, and the seed's server took such a body as JSON."""

    PATHS = frozenset({"/", "/qos"})

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PATCH")
            and (scope["path"] in self.PATHS)
        ):
            headers = [(k, v) for k, v in scope.get("headers", ()) if k != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)
