"""The HTTP API: the seed's `/qos` and `POST /`, plus patches, stats (JSON, a live stream,
Prometheus), timelines, OpenAPI and a small browser UI.

It runs inside `linkshaper run --http HOST:PORT` and speaks to the supervisor through the same
requests as every other client (`handle`), so a change made over HTTP is applied, published
and recorded exactly like one from the TUI or `linkshaper set`. With a token set
(`--http-token`, or `LINKSHAPER_HTTP_TOKEN`) every request needs it, reads and streams as
changes, except OPEN_PATHS.
"""

from __future__ import annotations

import json
import secrets
import threading
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from engine.model.validation_errors import describe_errors
from engine.web.capture_routes import capture_routes
from engine.web.common import ERROR_CONTENT, NOT_THERE, ApiError, Engine, spec_in_force
from engine.web.network_door import NetworkDoor
from engine.web.spec_routes import spec_routes
from engine.web.stats_routes import stats_routes
from engine.web.timeline_routes import timeline_routes

#: Largest request body read: a spec with thousands of flows, or a long timeline, is smaller.
MAX_BODY = 16 * 1024 * 1024
#: Most bytes of request bodies being received and parsed at once, summed over all requests
#: (503 beyond): parsing a body takes several times its size (a 15 MB line of JSON: ~90 MB),
#: and twenty at once took 1.9 GB. One of the largest at a time (small bodies, SMALL_BODY,
#: always pass) is room for honest use; two let a replay's check take ~400 MB.
MAX_BODIES_BYTES = MAX_BODY
#: A body up to this long is counted in MAX_BODIES_BYTES but never refused by it: a patch or a
#: small spec gets through while large bodies fill the budget (their sum stays bounded by the
#: connection cap times this).
SMALL_BODY = 64 * 1024
#: Methods a 405's `Allow` is probed for.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
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
        """The token's check for the schema's sake (it documents the headers and the 401):
        TokenGate has refused a request without the token before its body was read."""
        refusal = token_refusal(token, request.method, request.url.path, request.headers)
        if refusal is not None:
            raise HTTPException(status_code=401, detail=refusal)

    app = FastAPI(
        title="linkshaper",
        summary="Shape a link live: the seed's /qos API and more.",
        description=(
            'Every error is `{"error": "one line naming the field and the reason"}`: 400 for '
            "a body that is not JSON at all, 422 for one that is not a valid request, 401 for "
            "a request without the token (when one is set; only the page, /healthz and the "
            "API's description are open then), 404 for what is not there (no "
            "recording, no replay), 405 for a method a path does not take, 409 for a recording "
            f"started while one runs, 413 for a body over {MAX_BODY} bytes, 503 when bodies, "
            "streams or captures are at their cap, or a change is not in force by its deadline."
        ),
        version="1",
        docs_url="/docs",
        dependencies=[Depends(may_use)],
        responses={
            400: {"model": ApiError, "description": "Not JSON", "content": ERROR_CONTENT},
            413: {"model": ApiError, "description": "Too large", "content": ERROR_CONTENT},
            422: {"model": ApiError, "description": "Not valid", "content": ERROR_CONTENT},
            503: {
                "model": ApiError,
                "content": ERROR_CONTENT,
                "description": "Busy (bodies, streams or captures at their cap) or a change not "
                "in force by its deadline (a stalled worker; the change is kept)",
            },
        },
    )
    app.add_middleware(BodyLimit)
    app.add_middleware(JsonBodies)
    app.add_middleware(TokenGate, token=token)  # the outermost: before any body is read

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        not_json = _not_json(exc)
        if not_json is not None:
            return JSONResponse({"error": not_json}, status_code=400)
        return JSONResponse({"error": _one_line(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # FastAPI's "There was an error parsing the body": one not even text (not UTF-8).
            reason = str(exc.__cause__).splitlines()[0]
            return JSONResponse({"error": f"body: not JSON: {reason}"}, status_code=400)
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
    """The methods some route takes at the request's path, each probed by matching the scope
    with that method (Starlette's 405 names only those of the first such route, and FastAPI
    keeps an included router as one route whose own `methods` are none)."""
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in app.router.routes
        )
    ]


def _not_json(exc: RequestValidationError) -> str | None:
    """`body: not JSON: REASON at line L column C` for a body that is not JSON at all (FastAPI
    reports it as a validation error naming no field), else None."""
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "invalid")
            document, position = exc.body, error["loc"][-1]
            if isinstance(document, str) and isinstance(position, int):
                where = json.JSONDecodeError(reason, document, position)
                return f"body: not JSON: {reason} at line {where.lineno} column {where.colno}"
            return f"body: not JSON: {reason}"
    return None


def token_refusal(token: str | None, method: str, path: str, headers: Any) -> str | None:
    """Why a request may not be served without the token (None: it may). With a token set, a
    request needs `Authorization: Bearer TOKEN` (or `X-Linkshaper-Token`): reads and streams
    as well as changes (what the link does, its traffic, captured frames, the machine's
    interfaces and processes are nobody else's business); only a GET of OPEN_PATHS is open."""
    if token is None or (method == "GET" and path in OPEN_PATHS):
        return None  # not POST /: the seed's way to change the link
    given = headers.get("x-linkshaper-token")
    authorization = headers.get("authorization")
    if authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    # Bytes, not str: compare_digest raises on non-ASCII text, which would be a 500.
    if given and secrets.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode()):
        return None
    return f"a valid token is needed to {'read' if method == 'GET' else 'change'} the link"


class TokenGate:
    """The token checked from the request head alone, 401 at once: a FastAPI dependency runs
    only after the body has been received and parsed, so without this a request with no
    token could make the engine take and parse a 16 MiB body, or hold a connection while
    one trickles in."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.token is not None:
            headers = Headers(scope=scope)
            refusal = token_refusal(self.token, scope["method"], scope["path"], headers)
            if refusal is not None:
                # Not closed at once: uvicorn drops what comes of the body unread, so the client
                # sending one still reads why (HEAD_TIMEOUT closes a connection that lingers).
                response = JSONResponse({"error": refusal}, status_code=401)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _one_line(exc: RequestValidationError) -> str:
    return describe_errors(exc.errors()) or "body: invalid"


class BodyLimit:
    """Refuse a request body over `limit` bytes (413) before anything parses it, by the
    declared length and by what actually arrives for a body sent in chunks; and bodies beyond
    `budget` bytes being read at once, summed over all requests (503): each holds its declared
    length (or what has come, without one) from its head until the request ends."""

    def __init__(self, app: Any, limit: int = MAX_BODY, budget: int = MAX_BODIES_BYTES) -> None:
        self.app = app
        self.limit = limit
        self.budget = budget
        self.in_flight = 0
        self._lock = threading.Lock()  # two servers (--unshaped-port) may share the app

    def _take(self, size: int, small: bool) -> bool:
        with self._lock:
            if not small and self.in_flight + size > self.budget:
                return False
            self.in_flight += size
            return True

    def _give_back(self, size: int) -> None:
        with self._lock:
            self.in_flight -= size

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                response = JSONResponse({"error": _too_large(self.limit)}, status_code=413)
                await response(scope, receive, send)
                return
            if name == b"content-length":
                declared = int(value)
        if declared is not None and not self._take(declared, declared <= SMALL_BODY):
            busy = self._busy()
            await _drop_body(receive)  # the client sending it reads the answer (see there)
            await JSONResponse({"error": busy}, status_code=503)(scope, receive, send)
            return
        held = declared or 0
        seen = 0
        limit = self.limit

        async def limited() -> Any:
            nonlocal seen, held
            message = await receive()
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                seen += size
                if seen > limit:  # FastAPI passes an HTTPException through as it is
                    raise HTTPException(status_code=413, detail=_too_large(limit))
                if declared is None and size:
                    if not self._take(size, seen <= SMALL_BODY):
                        raise HTTPException(status_code=503, detail=self._busy())
                    held += size
            return message

        try:
            await self.app(scope, limited, send)
        finally:
            self._give_back(held)

    def _busy(self) -> str:
        return (
            f"body: {self.in_flight} bytes of requests are being read already, the most at "
            "once; try again"
        )


async def _drop_body(receive: Any) -> None:
    """Take a refused request's body and keep none of it, a chunk at a time (its connection's
    body deadline bounds how long): answered first, a client that asked for `Connection:
    close` (urllib, most scripts) would have its connection closed under the body it is still
    sending, and its kernel would reset it and lose the answer."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


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
