"""The HTTP client and `linkshaper doctor` against peers that lie: an HTTP server that trickles,
floods, redirects or answers garbage (a real socket on 127.0.0.1, a thread here), and an engine
(the real control server) whose version and errors carry terminal escapes and floods. Each must
be one line, within the deadline, and nothing of the peer's reaches the terminal raw."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.model.spec import PASS_THROUGH
from engine.protocol.control_server import ControlServer
from engine.protocol.http_client import MAX_BODY, HttpApiError, HttpClient
from engine.protocol.messages import Error, GetSpec, GetVersion, Message, SpecReply, Version

LINKSHAPER = str(Path(sys.executable).parent / "linkshaper")
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


Answer = Callable[[socket.socket], None]


@pytest.fixture
def http_peer() -> Iterator[Callable[[Answer], tuple[str, list[bytes]]]]:
    """A loopback server that reads a request and runs `answer` on the connection; the URL
    and the requests it received."""
    servers: list[socket.socket] = []

    def serve(answer: Answer) -> tuple[str, list[bytes]]:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)
        seen: list[bytes] = []

        def run() -> None:
            for _ in range(3):
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    seen.append(conn.recv(65536))
                    with contextlib.suppress(OSError):
                        answer(conn)

        threading.Thread(target=run, daemon=True).start()
        return f"http://127.0.0.1:{server.getsockname()[1]}", seen

    yield serve
    for server in servers:
        server.close()


def trickle(conn: socket.socket) -> None:
    conn.sendall(HEAD + b"Content-Length: 40\r\n\r\n")
    for _ in range(40):
        conn.sendall(b" ")
        time.sleep(0.5)


def test_a_trickling_body_meets_the_whole_request_deadline(http_peer: Callable) -> None:  # type: ignore[type-arg]
    url, _ = http_peer(trickle)
    start = time.monotonic()
    with pytest.raises(HttpApiError, match="no answer within 2 s"):
        HttpClient(url, timeout=2.0).version()
    assert time.monotonic() - start < 6


def flood(conn: socket.socket) -> None:
    conn.sendall(HEAD + b"Content-Length: 800000000\r\n\r\n")
    chunk = b"0" * (1 << 20)
    for _ in range(800):
        conn.sendall(chunk)


def test_a_huge_body_is_cut_at_the_limit(http_peer: Callable) -> None:  # type: ignore[type-arg]
    url, _ = http_peer(flood)
    with pytest.raises(HttpApiError, match=f"larger than {MAX_BODY >> 20} MiB"):
        HttpClient(url, timeout=30.0).version()


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (HEAD + b"Content-Length: 9\r\n\r\nnot json!", "the answer is not JSON"),
        (
            HEAD + b'Content-Length: 100\r\n\r\n{"ver',
            "IncompleteRead(5 bytes read, 95 more expected)",
        ),
        (b"garbage\x1b[2J\r\n\r\n", "BadStatusLine"),
    ],
)
def test_a_broken_answer_is_one_line(http_peer: Callable, reply: bytes, says: str) -> None:  # type: ignore[type-arg]
    url, _ = http_peer(lambda conn: conn.sendall(reply))
    with pytest.raises(HttpApiError) as caught:
        HttpClient(url, timeout=5.0).version()
    assert says in str(caught.value)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)


def test_a_redirect_is_refused_and_the_token_stays_home(http_peer: Callable) -> None:  # type: ignore[type-arg]
    elsewhere, seen_there = http_peer(
        lambda conn: conn.sendall(HEAD + b"Content-Length: 2\r\n\r\n{}")
    )
    moved = f"HTTP/1.1 302 Found\r\nLocation: {elsewhere}/version\r\nContent-Length: 0\r\n\r\n"
    url, _ = http_peer(lambda conn: conn.sendall(moved.encode()))
    with pytest.raises(HttpApiError, match=f"redirected to {elsewhere}/version, not followed"):
        HttpClient(url, token="s3cret", timeout=5.0).version()
    time.sleep(0.2)
    assert seen_there == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/", "http://"])
def test_only_http_urls_are_taken(url: str) -> None:
    with pytest.raises(HttpApiError, match="not an http:// or https:// URL"):
        HttpClient(url)


def test_doctor_refuses_a_file_url() -> None:
    done = subprocess.run([LINKSHAPER, "doctor", "--for", "client", "--http", "file:///etc/passwd"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "not an http:// or https:// URL" in done.stdout
    assert "root:" not in done.stdout and done.stderr == ""


@pytest.mark.parametrize("version", ["\x1b[2J\x1b]0;owned\x07 9.9", None])
def test_doctor_prints_a_hostile_engine_safely(tmp_path: Path, version: str | None) -> None:
    """A version with escapes (the model caps it at 100 characters), and an error message of
    3 MB with escapes in it: the text has neither escapes nor long lines."""

    def handle(request: Message) -> Message:
        if isinstance(request, GetVersion):
            if version is not None:
                return Version(version=version)
            return Error(message="\x1b[2J\x1b]0;owned\x07" + "x" * 3_000_000)
        if isinstance(request, GetSpec):
            return SpecReply(spec=PASS_THROUGH)
        return Error(message="no")

    server = ControlServer(str(tmp_path / "engine.sock"), handle)
    server.start()
    try:
        assert server.path is not None
        done = subprocess.run([LINKSHAPER, "doctor", "--for", "client", "--control", server.path],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    finally:
        server.close()
    assert done.stderr == ""
    assert "engine_version" in done.stdout
    assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in done.stdout)
    assert max(len(line) for line in done.stdout.splitlines()) < 1100
