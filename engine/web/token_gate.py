"""The API's token, checked from the request head alone, before any body is read: with a token
set (`--http-token`, or `LINKSHAPER_HTTP_TOKEN`) every request needs it, reads and streams as
changes, except OPEN_PATHS. With or without one, a change that a browser sends from another
site's page is refused (cross-site request forgery)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

from engine.model.printable import printable

#: What a GET needs no token for even when one is set: the browser page (it asks for the
#: token itself), the API's description and a liveness probe's answer, none of which says
#: anything of the link, its traffic or the machine.
OPEN_PATHS = frozenset(
    {"/", "/control.html", "/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json"}
)


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


#: Methods that change nothing: a page of any site may make a browser send them, and their
#: answers are not given to it (no CORS headers are sent).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_site_refusal(method: str, headers: Any) -> str | None:
    """Why a change may not be served (None: it may): a browser sends `Origin` with every
    POST, PATCH and DELETE, and a page of any site can make it send a "simple" one (a
    text/plain body needs no preflight) to an API on loopback; without a token nothing else
    stopped it. A change whose `Origin` is not this API's own address (`Host`) is refused.
    Clients that are not browsers (curl, the seed's client under node, scripts) send no
    `Origin` and are served as before; so is the API's own page."""
    if method in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    if origin is None:
        return None
    host = (headers.get("host") or "").lower()
    try:
        netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
    except ValueError:
        netloc = ""
    if netloc and netloc == host:
        return None
    return f"a change sent by a page of another site ({printable(origin, 80)}) is refused"


class TokenGate:
    """The token checked from the request head alone, 401 at once: a FastAPI dependency runs
    only after the body has been received and parsed, so without this a request with no
    token could make the engine take and parse a 16 MiB body, or hold a connection while
    one trickles in."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            method = scope["method"]
            refusal, status = cross_site_refusal(method, headers), 403
            if refusal is None and self.token is not None:
                refusal, status = token_refusal(self.token, method, scope["path"], headers), 401
            if refusal is not None:
                # Not closed at once: uvicorn drops what comes of the body unread, so the client
                # sending one still reads why (HEAD_TIMEOUT closes a connection that lingers).
                response = JSONResponse({"error": refusal}, status_code=status)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
