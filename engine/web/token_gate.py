"""The API's token, checked from the request head alone, before any body is read: with a token
set (`--http-token`, or `LINKSHAPER_HTTP_TOKEN`) every request needs it, reads and streams as
changes, except OPEN_PATHS."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

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
