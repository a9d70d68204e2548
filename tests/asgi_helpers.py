"""Requests to an ASGI app in process, byte for byte, without a server or an HTTP client."""

from __future__ import annotations

import asyncio
from typing import Any


def call(
    app: Any,
    method: str,
    path: str,
    chunks: list[bytes],
    declared: int | None = None,
    content_type: str = "application/json",
    extra: dict[str, str] | None = None,
) -> tuple[int, bytes, int]:
    """One request (with `extra` headers); the status, the body and how many chunks the app
    read."""
    headers = [(b"content-type", content_type.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": headers, "scheme": "http", "server": ("t", 80), "client": ("t", 1),
             "root_path": ""}  # fmt: skip
    queue = list(chunks)
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not queue:
            return {"type": "http.disconnect"}
        read += 1
        body = queue.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(queue)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, read
