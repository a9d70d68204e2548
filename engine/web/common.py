"""What the HTTP API's parts share: the engine they talk to, the error body, the response
types, and the spec in force."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

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


def spec_in_force(engine: Engine) -> Spec:
    reply = engine.handle(GetSpec())
    assert isinstance(reply, SpecReply)
    return reply.spec
