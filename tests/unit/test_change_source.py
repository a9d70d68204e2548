"""A change's `source` is bounded in the model every door's message uses (issue: a 5 MB
source was accepted, broadcast to every subscriber and logged as one line; escapes passed
through): a real control socket refuses an oversized or escaped source in one line naming
`source`, and every door's own sources still pass."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.model.change_source import MAX_SOURCE_LENGTH
from engine.model.spec import Spec
from engine.protocol.control import connect
from engine.protocol.control_server import ControlServer
from engine.protocol.messages import (
    Error,
    Message,
    PatchSpec,
    SetSpec,
    SpecChanged,
    SpecReply,
    decode,
)
from engine.timelines.parsing import parse_timeline
from engine.timelines.timeline import TimelineError

#: Every `source=` the engine's own doors send (grep `source=`): control clients, HTTP, SIGHUP,
#: replays, the TUI's tag.
DOOR_SOURCES = ["client", "cli", "http", "sighup", "replay", "tui:4242", "x" * MAX_SOURCE_LENGTH]
BAD_SOURCES = ["x" * 5_000_000, "x" * (MAX_SOURCE_LENGTH + 1), "ok\x1b[2J", "two\nlines", ""]


@pytest.fixture
def control(tmp_path: Path) -> Iterator[str]:
    """A real control socket whose handler applies every change it is given (none refused)."""

    def handle(request: Message) -> Message:
        return SpecReply(spec=Spec())

    server = ControlServer(str(tmp_path / "engine.sock"), handle)
    server.start()
    assert server.path is not None
    try:
        yield server.path
    finally:
        server.close()


def _send(path: str, message: dict[str, object]) -> Message:
    conn = connect(path)
    try:
        conn.send_bytes(json.dumps(message).encode())
        return decode(conn.recv_bytes())
    finally:
        conn.close()


@pytest.mark.parametrize("source", BAD_SOURCES, ids=["5MB", "201", "escape", "newline", "empty"])
def test_the_control_socket_refuses_a_bad_source_in_one_line(control: str, source: str) -> None:
    for kind in ({"type": "patch_spec", "changes": {}}, {"type": "set_spec", "spec": {}}):
        reply = _send(control, {**kind, "source": source})
        assert isinstance(reply, Error), reply
        assert reply.message.startswith("bad request: source: "), reply.message
        assert "\n" not in reply.message and len(reply.message) < 200


@pytest.mark.parametrize("source", DOOR_SOURCES)
def test_every_doors_own_source_still_passes(control: str, source: str) -> None:
    for message in (PatchSpec(changes={}, source=source), SetSpec(spec=Spec(), source=source)):
        reply = _send(control, json.loads(message.model_dump_json()))
        assert isinstance(reply, SpecReply), reply
    assert SpecChanged(spec=Spec(), source=source, at=0.0).source == source


def test_a_subscriber_never_reads_an_escape_as_a_source() -> None:
    with pytest.raises(ValidationError, match="source: printable"):
        SpecChanged(spec=Spec(), source="\x1b]0;pwned\x07", at=0.0)


def test_a_timeline_step_with_an_escaped_source_is_refused() -> None:
    lines = [
        json.dumps({"linkshaper_timeline": 1}),
        json.dumps({"at": 0, "set": {"uplink.latency": "5ms"}, "source": "a\x1b[31m"}),
    ]
    with pytest.raises(TimelineError, match="source"):
        parse_timeline(lines)
