"""What the HTTP API's parts share: the engine they talk to, the error body, the response
types, and the spec in force."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import HTTPException
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel

from engine.model.spec import Spec
from engine.protocol.messages import CaptureRequest, GetSpec, Message, SpecReply


class CaptureSource(Protocol):
    """A running capture: FateRecords and CaptureLost messages, None after `timeout`."""

    def get(self, timeout: float) -> Message | None: ...

    def close(self) -> None: ...


class Engine(Protocol):
    """What the API needs of the engine: answer a control request, tell listeners, and run
    a capture (ControlError if it is refused)."""

    def handle(self, request: Message) -> Message: ...

    def listen(self, callback: Callable[[Message], None]) -> Callable[[], None]: ...

    def capture(self, request: CaptureRequest) -> CaptureSource: ...


class ApiError(BaseModel):
    error: str


class NdjsonResponse(PlainTextResponse):
    """A timeline: JSON Lines."""

    media_type = "application/x-ndjson"


class ClosingStreamResponse(StreamingResponse):
    """A streamed answer that calls `on_close` once it ends however it ends: also when the
    client goes before the first chunk, when the stream's own `finally` never runs."""

    def __init__(
        self, content: Any, status_code: int = 200, on_close: Callable[[], None] | None = None
    ) -> None:
        super().__init__(content, status_code)  # FastAPI's OpenAPI reads the default status
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._on_close is not None:
                self._on_close()


class EventStreamResponse(ClosingStreamResponse):
    """Server-sent events."""

    media_type = "text/event-stream"


class Slots:
    """At most `limit` of something at once (streams, captures): `take` answers 503 beyond it."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.taken = 0
        self._lock = threading.Lock()

    def take(self) -> Callable[[], None]:
        """A slot, and the function that gives it back (once, however often it is called)."""
        with self._lock:
            if self.taken >= self.limit:
                raise HTTPException(
                    status_code=503,
                    detail=f"{self.what}: {self.limit} run already, the most at once; "
                    "try again when one ends",
                )
            self.taken += 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            with self._lock:
                if not given_back:
                    given_back = True
                    self.taken -= 1

        return give_back


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


def spec_in_force(engine: Engine) -> Spec:
    reply = engine.handle(GetSpec())
    assert isinstance(reply, SpecReply)
    return reply.spec
