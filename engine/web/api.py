"""The HTTP API: the seed's `/qos` and `POST /`, plus patches, stats (JSON, a live stream,
Prometheus), timelines, OpenAPI and a small browser UI.

It runs inside `linkshaper run --http HOST:PORT` and speaks to the supervisor through the same
requests as every other client (`handle`), so a change made over HTTP is applied, published
and recorded exactly like one from the TUI or `linkshaper set`. With a token set
(`--http-token`, or `LINKSHAPER_HTTP_TOKEN`) every request needs it, reads and streams as
changes, except OPEN_PATHS (`token_gate`); bodies are bounded by `body_limits`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from engine.model.printable import printable
from engine.model.validation_errors import describe_errors
from engine.protocol.control import ControlError
from engine.web.body_limits import MAX_BODY, BodyLimit, JsonBodies
from engine.web.capture_routes import capture_routes
from engine.web.common import ERROR_CONTENT, NOT_THERE, ApiError, Engine, spec_in_force
from engine.web.network_door import NetworkDoor
from engine.web.spec_routes import spec_routes
from engine.web.stats_routes import stats_routes
from engine.web.timeline_routes import timeline_routes
from engine.web.token_gate import TokenGate, token_refusal

#: The schema's description: what every error looks like, and which status says what.
DESCRIPTION = (
    'Every error is `{"error": "one line naming the field and the reason"}`: 400 for '
    "a body that is not JSON at all, 422 for one that is not a valid request, 401 for "
    "a request without the token (when one is set; only the page, /healthz and the "
    "API's description are open then), 404 for what is not there (no "
    "recording, no replay), 405 for a method a path does not take, 409 for a recording "
    f"started while one runs, 413 for a body over {MAX_BODY} bytes, 503 when bodies, "
    "streams or captures are at their cap, or a change is not in force by its deadline."
)
#: Methods a 405's `Allow` is probed for.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


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
        description=DESCRIPTION,
        version="1",
        docs_url="/docs",
        dependencies=[Depends(may_use)],
        responses=_common_responses(),
    )
    app.add_middleware(BodyLimit)
    app.add_middleware(JsonBodies)
    app.add_middleware(TokenGate, token=token)  # the outermost: before any body is read
    _answer_errors(app)

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


def _common_responses() -> dict[int | str, dict[str, Any]]:
    """The answers any path may give, documented once for all of them."""
    return {
        400: {"model": ApiError, "description": "Not JSON", "content": ERROR_CONTENT},
        413: {"model": ApiError, "description": "Too large", "content": ERROR_CONTENT},
        422: {"model": ApiError, "description": "Not valid", "content": ERROR_CONTENT},
        503: {
            "model": ApiError,
            "content": ERROR_CONTENT,
            "description": "Busy (bodies, streams or captures at their cap) or a change not "
            "in force by its deadline (a stalled worker; the change is kept)",
        },
    }


def _answer_errors(app: FastAPI) -> None:
    """Every error as `{"error": "one line"}`: a body not JSON is a 400, one not valid a 422,
    and a 405 names every method its path takes."""

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        not_json = _not_json(exc)
        if not_json is not None:
            return JSONResponse({"error": not_json}, status_code=400)
        return JSONResponse({"error": _one_line(exc)}, status_code=422)

    @app.exception_handler(ControlError)
    async def engine_silent(_request: Request, exc: ControlError) -> JSONResponse:
        # `linkshaper http`: the engine gone or silent past its deadline (a stopped supervisor)
        return JSONResponse({"error": printable(str(exc))}, status_code=503)

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


def _one_line(exc: RequestValidationError) -> str:
    return describe_errors(exc.errors()) or "body: invalid"
