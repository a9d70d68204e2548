"""The HTTP API's bounds in process, over ASGI: a body streamed in chunks past the limit is cut
off with 413 once the limit is crossed, not read to the end; a patch of too many fields is
refused before anything is validated. The engine behind it is a stand-in that records what
reaches it: what is checked here is that nothing does."""

from __future__ import annotations

import json
from collections.abc import Callable

from engine.model.spec import PASS_THROUGH
from engine.protocol.control import ControlError
from engine.protocol.messages import CaptureRequest, GetSpec, Message, SpecReply
from engine.web.api import create_http_app
from engine.web.body_limits import MAX_BODY
from engine.web.common import CaptureSource
from engine.web.spec_routes import MAX_PATCH_FIELDS
from tests.asgi_helpers import call


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Message] = []

    def handle(self, request: Message) -> Message:
        self.requests.append(request)
        return SpecReply(spec=PASS_THROUGH)

    def listen(self, callback: Callable[[Message], None]) -> Callable[[], None]:
        return lambda: None

    def capture(self, request: CaptureRequest) -> CaptureSource:
        raise ControlError("no captures here")


def test_a_streamed_body_is_cut_off_once_past_the_limit() -> None:
    engine = Recorder()
    app = create_http_app(engine)
    chunk = b" " * (1024 * 1024)
    chunks = [chunk] * (MAX_BODY // len(chunk) + 8)
    status, body, read = call(app, "POST", "/qos", chunks)
    assert status == 413 and b"larger than" in body
    assert read == MAX_BODY // len(chunk) + 1  # stopped at the first chunk past the limit
    assert not any(not isinstance(r, GetSpec) for r in engine.requests)


def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    engine = Recorder()
    status, _, read = call(create_http_app(engine), "POST", "/qos", [b"{}"], MAX_BODY + 1)
    assert status == 413 and read == 0 and engine.requests == []


def test_a_patch_of_too_many_fields_reaches_no_engine() -> None:
    engine = Recorder()
    fields = json.dumps({f"egress.x{i}": 1 for i in range(MAX_PATCH_FIELDS + 1)}).encode()
    status, body, _ = call(create_http_app(engine), "PATCH", "/qos", [fields])
    assert status == 422 and b"more than" in body and engine.requests == []
