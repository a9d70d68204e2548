"""Request bodies, bounded before anything parses them: each by its size (413) and all those
being read at once by their sum (503); and the seed's spec bodies taken as JSON whatever their
Content-Type."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

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
