"""The HTTP API's budget (issue 34, items 1, 6 and 12, and "reads follow the token"): whatever
a client that reaches the port does, with or without the token, the engine holds a bounded
number of connections, streams and captures, each with a bounded buffer, keeps descriptors in
reserve to restart a worker, and logs boundedly. The slowloris test runs the real engine in the
lab under a low descriptor limit; the others serve the real app with the real uvicorn server on
loopback in this process, in front of a small engine whose only job is to publish messages."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.model.fates import FateRecord, pack
from engine.model.spec import PASS_THROUGH
from engine.model.stats import DirectionStats, EngineStats, LinkStats
from engine.protocol.messages import (
    CaptureRequest,
    FateRecords,
    GetStats,
    Message,
    SpecReply,
    StatsReply,
    StatsReport,
)
from engine.protocol.subscribers import Listeners
from engine.web.api import create_http_app
from engine.web.capture_routes import CAPTURE_BUFFER_BYTES, MAX_CAPTURES
from engine.web.server import HEAD_TIMEOUT, KEEP_ALIVE_TIMEOUT, HttpServer
from engine.web.stats_stream import MAX_STREAMS, STREAM_BACKLOG_BYTES

# --- item 1: slowloris against the real engine ----------------------------------------------


# --- the same server in process, in front of an engine that only publishes ------------------


class FedCapture:
    """A capture whose records the test hands in; counts what the API took of them."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.taken = 0
        self.closed = threading.Event()

    def get(self, timeout: float) -> Message | None:
        try:
            message = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        self.taken += 1
        return message

    def close(self) -> None:
        self.closed.set()


class PublishingEngine:
    """What the API needs of an engine and no more: the spec, the real in-process hub that the
    supervisor publishes through, and captures fed by the test."""

    def __init__(self) -> None:
        self.listeners = Listeners()
        self.captures: list[FedCapture] = []

    def handle(self, request: Message) -> Message:
        if isinstance(request, GetStats):
            return StatsReply(stats=EngineStats())
        return SpecReply(spec=PASS_THROUGH)

    def listen(self, callback: Callable[[Message], None]) -> Callable[[], None]:
        return self.listeners.add(callback)

    def capture(self, request: CaptureRequest) -> FedCapture:
        capture = FedCapture()
        self.captures.append(capture)
        return capture


@pytest.fixture
def served() -> Iterator[Callable[..., tuple[PublishingEngine, HttpServer, int]]]:
    """The real app on the real uvicorn server with its guard, on an ephemeral loopback port."""
    servers: list[HttpServer] = []

    def serve(
        token: str | None = None, connections: int | None = None
    ) -> tuple[PublishingEngine, HttpServer, int]:
        engine = PublishingEngine()
        server = HttpServer(create_http_app(engine, token), "127.0.0.1", 0, connections)
        servers.append(server)
        server.start()
        port: int = server.server.servers[0].sockets[0].getsockname()[1]
        return engine, server, port

    try:
        yield serve
    finally:
        for server in servers:
            server.stop()


def get(port: int, path: str, token: str | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def closed_by_server(conn: socket.socket, within: float) -> float | None:
    """Seconds until the server closed `conn` (reading what it sends), None if not `within`."""
    started = time.monotonic()
    conn.settimeout(0.2)
    while time.monotonic() - started < within:
        try:
            if not conn.recv(65536):
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    return None


def at_eof(conn: socket.socket) -> bool:
    """Whether the server has closed `conn` (what it sent before is left unread)."""
    try:
        while data := conn.recv(65536, socket.MSG_DONTWAIT | socket.MSG_PEEK):
            conn.recv(len(data))
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_a_request_head_must_come_whole_within_the_head_timeout(
    served: Callable[..., tuple[PublishingEngine, HttpServer, int]],
) -> None:
    """The bug: uvicorn has no head timeout (its keep-alive timer starts after an answer and
    stops at the first byte of the next request), so a trickled head held its socket for
    ever. A head that trickles a line a second, or one that never ends, is closed at
    HEAD_TIMEOUT; one kept alive after an answer as well."""
    _, server, port = served()
    silent = socket.create_connection(("127.0.0.1", port))
    trickling = socket.create_connection(("127.0.0.1", port))
    kept = socket.create_connection(("127.0.0.1", port))
    try:
        silent.sendall(b"GET /qos HTTP/1.1\r\nHost: x\r\n")
        kept.sendall(b"GET /qos HTTP/1.1\r\nHost: x\r\n\r\n")
        kept.settimeout(5)
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        kept.sendall(b"GET /qos HTTP/1.1\r\n")  # the next request's head, never finished
        trickling.sendall(b"GET /qos HTTP/1.1\r\n")
        started = time.monotonic()
        while time.monotonic() - started < HEAD_TIMEOUT + 3:
            with contextlib.suppress(OSError):
                trickling.sendall(b"X-a: b\r\n")  # uvicorn's keep-alive timer stops at each
                kept.sendall(b"X-a: b\r\n")
            time.sleep(1.0)
            if all(at_eof(conn) for conn in (silent, trickling, kept)):
                break
        for conn in (silent, trickling, kept):
            taken = closed_by_server(conn, within=5.0)
            assert taken is not None, "a connection with an unfinished head was kept"
        assert time.monotonic() - started >= HEAD_TIMEOUT - 1.0  # not before its time
        assert server.guard.timed_out == 3 and not server.guard.open
    finally:
        for conn in (silent, trickling, kept):
            conn.close()
    assert get(port, "/qos")[0] == 200


def test_connections_past_the_cap_shed_the_oldest_idle_or_are_refused(
    served: Callable[..., tuple[PublishingEngine, HttpServer, int]],
) -> None:
    """At the cap, a new connection takes the place of the oldest one still waiting for its
    head (so a flood of idle ones cannot lock out a real request); when every connection is
    busy (streams here), a new one is closed at once instead of held."""
    cap = 8
    _, server, port = served(connections=cap)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3 * cap)]
    try:
        status, _ = get(port, "/qos", timeout=5)
        assert status == 200
        shed = sum(closed_by_server(conn, within=0.5) is not None for conn in idle)
        assert shed >= 2 * cap  # closed, not left to hold a descriptor
        assert len(server.guard.open) <= cap and server.guard.shed >= 2 * cap
    finally:
        for conn in idle:
            conn.close()
    streams = [socket.create_connection(("127.0.0.1", port)) for _ in range(cap)]
    try:
        for conn in streams:
            conn.sendall(b"GET /stats/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            conn.settimeout(5)
            assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        extra = socket.create_connection(("127.0.0.1", port))
        with extra:
            extra.sendall(b"GET /qos HTTP/1.1\r\nHost: x\r\n\r\n")
            assert closed_by_server(extra, within=2.0) is not None
        assert server.guard.refused >= 1 and len(server.guard.open) == cap
    finally:
        for conn in streams:
            conn.close()


def stats_message(flows: int) -> StatsReport:
    links = {f"flow-{i}": LinkStats(packets_in=i, bytes_in=1500 * i) for i in range(flows)}
    return StatsReport(
        stats=DirectionStats(
            direction="egress", at=time.time(), pid=1, total=LinkStats(), flows=links
        )
    )


def metric(port: int, name: str) -> float:
    status, body = get(port, "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.split(" ")[0] == name:
            return float(line.split(" ")[1])
    raise AssertionError(f"{name} is not in /metrics")


class StreamReader:
    """A `/stats/stream` reader on a socket of its own: counts the events it reads."""

    def __init__(self, port: int) -> None:
        self.conn = socket.create_connection(("127.0.0.1", port))
        self.conn.sendall(b"GET /stats/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        self.conn.settimeout(5)
        self.head = self.conn.recv(4096)
        self.events = self.head.count(b"event: stats")
        self._tail = b""

    def read_until(self, events: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.events < events and time.monotonic() < deadline:
            try:
                data = self.conn.recv(1 << 20)
            except TimeoutError:
                continue
            if not data:
                break
            text = self._tail + data
            self.events += text.count(b"event: stats")
            self._tail = text[-16:]
        return self.events

    def close(self) -> None:
        self.conn.close()


STREAM_READERS = 20
STREAM_MESSAGES = 30


def test_each_stream_message_is_encoded_once_for_every_reader(
    served: Callable[..., tuple[PublishingEngine, HttpServer, int]],
) -> None:
    """The bug: each reader serialised every message itself (200 idle readers: 66 % of a core)
    and polled in a pool thread every 0.5 s. Now the API's own count of encodings equals the
    messages published, whatever the number of readers, and each reader gets each one."""
    engine, _, port = served()
    readers = [StreamReader(port) for _ in range(STREAM_READERS)]
    try:
        assert all(r.head.startswith(b"HTTP/1.1 200") for r in readers)
        assert metric(port, "linkshaper_http_streams") == STREAM_READERS
        message = stats_message(flows=200)
        for _ in range(STREAM_MESSAGES):
            engine.listeners.notify(message)
            time.sleep(0.02)
        for reader in readers:
            assert reader.read_until(STREAM_MESSAGES, timeout=20) == STREAM_MESSAGES
        encoded = 'linkshaper_http_stream_messages_total{stage="encoded"}'
        delivered = 'linkshaper_http_stream_messages_total{stage="delivered"}'
        assert metric(port, encoded) == STREAM_MESSAGES
        assert metric(port, delivered) == STREAM_MESSAGES * STREAM_READERS
    finally:
        for reader in readers:
            reader.close()


def test_streams_past_the_cap_get_503_and_a_stalled_reader_holds_no_one_up(
    served: Callable[..., tuple[PublishingEngine, HttpServer, int]],
) -> None:
    """MAX_STREAMS readers at once; the next one gets a clear 503 and gets in once one has
    gone. A reader that reads nothing loses messages (counted, its backlog bounded) while
    the others get every one."""
    engine, _, port = served()
    readers = [StreamReader(port) for _ in range(MAX_STREAMS)]
    try:
        assert all(r.head.startswith(b"HTTP/1.1 200") for r in readers)
        status, body = get(port, "/stats/stream?seconds=1")
        assert status == 503 and "stats streams" in json.loads(body)["error"]
        for reader in readers[5:]:
            reader.close()
        del readers[5:]
        deadline = time.monotonic() + 5
        while get(port, "/stats/stream?seconds=0.1")[0] != 200:
            assert time.monotonic() < deadline, "a stream's slot was not given back"
            time.sleep(0.1)
        active, stalled = readers[:4], readers[4]
        stalled.conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        big = stats_message(flows=2000)  # about 300 kB of text each
        sent = 100
        counts: list[int] = []
        reading = [
            threading.Thread(target=lambda r=r: counts.append(r.read_until(sent, timeout=60)))
            for r in active
        ]
        for thread in reading:
            thread.start()
        for _ in range(sent):
            engine.listeners.notify(big)
            time.sleep(0.05)
        for thread in reading:
            thread.join(90)
        assert counts == [sent] * len(active)  # every message, however slow the stalled one
        lost = 'linkshaper_http_stream_messages_total{stage="lost"}'
        assert metric(port, lost) > 0  # the stalled one's backlog stopped growing at its bound
        assert len(big.model_dump_json()) * sent > 3 * STREAM_BACKLOG_BYTES  # it mattered
    finally:
        for reader in readers:
            reader.close()


RECORDS_PER_BATCH = 1000
BATCHES = 300


def fate_batch() -> FateRecords:
    head = bytes(range(128))
    records = [FateRecord(float(i), 0, 0.01, 0.0, "default", 1500, head)
               for i in range(RECORDS_PER_BATCH)]  # fmt: skip
    data, labels = pack(records, 0.0)
    return FateRecords(direction="egress", count=len(records),
                       data=base64.b64encode(data).decode(), labels=labels)  # fmt: skip


def test_captures_are_capped_and_a_stalled_reader_holds_a_bounded_buffer(
    served: Callable[..., tuple[PublishingEngine, HttpServer, int]],
) -> None:
    """The bug: each capture whose reader stopped held ~15 MB (the engine's backlog for it);
    their number had no bound. Now MAX_CAPTURES at once (503 beyond), and a capture keeps
    taking the engine's records while its reader stalls, holding CAPTURE_BUFFER_BYTES and
    counting the rest as lost in the file."""
    engine, _, port = served()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    stalled.connect(("127.0.0.1", port))
    others: list[socket.socket] = []
    try:
        stalled.sendall(b"GET /capture?seconds=60 HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 10
        while not engine.captures:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        capture = engine.captures[0]
        batch = fate_batch()
        for _ in range(BATCHES):
            capture.inbox.put(batch)
        deadline = time.monotonic() + 60
        while capture.taken < BATCHES:  # drained although nobody reads
            assert time.monotonic() < deadline, f"{capture.taken} of {BATCHES} taken"
            time.sleep(0.1)
        # MAX_CAPTURES - 1 more run; one more is refused at once.
        for _ in range(MAX_CAPTURES - 1):
            conn = socket.create_connection(("127.0.0.1", port))
            conn.sendall(b"GET /capture?seconds=60 HTTP/1.1\r\nHost: x\r\n\r\n")
            others.append(conn)
        deadline = time.monotonic() + 10
        while len(engine.captures) < MAX_CAPTURES:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        status, body = get(port, "/capture?seconds=1")
        assert status == 503 and "captures" in json.loads(body)["error"]
        # What the stalled reader finds when it reads at last: the buffer and what the sockets
        # held, not the 300 batches.
        received = b""
        stalled.settimeout(1.0)
        with contextlib.suppress(TimeoutError):
            while chunk := stalled.recv(1 << 20):
                received += chunk
        produced = BATCHES * RECORDS_PER_BATCH * 128
        socket_buffers = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
        assert len(received) < CAPTURE_BUFFER_BYTES + socket_buffers + 1_000_000 < produced / 4
        capture.inbox.put(batch)  # the next record written says how many were lost before it
        with contextlib.suppress(TimeoutError):
            while b"records lost" not in received and (chunk := stalled.recv(1 << 20)):
                received += chunk
        assert b"records lost" in received
    finally:
        stalled.close()
        for conn in others:
            conn.close()
    deadline = time.monotonic() + 5
    while not all(c.closed.is_set() for c in engine.captures):
        assert time.monotonic() < deadline, "a capture was not closed when its reader went"
        time.sleep(0.05)


# --- reads follow the token -------------------------------------------------------------------

TOKEN = "s3cret-read"
READS = ("/qos", "/stats", "/info", "/metrics", "/timeline/record", "/timeline/replay",
         "/top/egress.profile", "/capture?seconds=0.1", "/stats/stream?seconds=0.1")  # fmt: skip


def test_with_a_token_every_read_needs_it_and_only_the_page_and_probe_stay_open(
    served: Callable[..., tuple[PublishingEngine, HttpServer, int]],
) -> None:
    """The bug: with a token set, reads and streams needed none (the spec, the stats, captured
    frame heads, the machine's interfaces and PIDs). Now every read answers 401 without it;
    the page, /control.html, /healthz and the API's description stay open."""
    _, _, port = served(token=TOKEN)
    for path in READS:
        for token in (None, "wrong"):
            status, body = get(port, path, token)
            assert status == 401 and "token" in json.loads(body)["error"], (path, token)
        status, _ = get(port, path, TOKEN)
        assert status != 401, path
    assert get(port, "/qos", TOKEN)[0] == 200
    for path in ("/", "/control.html", "/healthz", "/docs", "/openapi.json"):
        assert get(port, path)[0] == 200, path
    assert json.loads(get(port, "/healthz")[1]) == {"ok": True}
    for method in ("POST", "PATCH"):  # an open page's path is not an open door to change
        for path in ("/", "/healthz", "/control.html"):
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", b"{}", method=method)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code in (401, 405), (method, path)
            refused.value.close()
    # The page sends the token on its reads and reads its stream with it.
    page = get(port, "/")[1].decode()
    assert "new EventSource" not in page and "...authorization()" in page


def test_the_page_reads_with_its_token(
    served: Callable[..., tuple[PublishingEngine, HttpServer, int]],
) -> None:
    """With a token set, the page given the token shows the spec and the live stats: it sends
    the token on its reads and reads the stream with it (EventSource cannot)."""
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (make install)")
    from tests.lab.test_http_api import browser_page

    engine, _, port = served(token=TOKEN)
    stop = threading.Event()

    def publish() -> None:
        sample = 0
        while not stop.wait(0.1):
            sample += 1
            total = LinkStats(bytes_out=125_000 * sample)
            engine.listeners.notify(StatsReport(stats=DirectionStats(
                direction="egress", at=float(sample), pid=1, total=total)))  # fmt: skip

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    try:
        with browser_page() as page:
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("document.getElementById('status').textContent !== ''")
            assert "token" in page.inner_text("#status")  # without it: told why
            page.fill("#token", TOKEN)
            page.dispatch_event("#token", "change")
            page.wait_for_function("document.getElementById('egress-rate').value !== ''")
            page.wait_for_function(
                "document.getElementById('egress-live').textContent.startsWith('out')",
                timeout=20_000,
            )
    finally:
        stop.set()
        publisher.join(5)


# --- the token before the body, 405s, bodies not JSON, the words -----------------------------


def test_with_a_token_a_change_without_it_is_refused_before_its_body(
    served: Callable[..., tuple[PublishingEngine, HttpServer, int]],
) -> None:
    """The bug: the token was a FastAPI dependency, which runs after the body has been received
    and parsed, so a request without the token made the engine wait for (and hold) its body:
    one promising 16 MB and sending none was answered only by the body deadline. Now the head
    alone decides: 401 at once (what comes of the body is dropped, and the connection closed
    after KEEP_ALIVE_TIMEOUT)."""
    _, _, port = served(token=TOKEN)
    for method in ("POST", "PATCH"):
        for credentials in (b"", b"Authorization: Bearer wrong\r\n"):
            conn = socket.create_connection(("127.0.0.1", port))
            with conn:
                started = time.monotonic()
                conn.sendall(
                    f"{method} /qos HTTP/1.1\r\nHost: x\r\nContent-Length: 16000000\r\n".encode()
                    + credentials
                    + b"\r\n"
                )
                conn.settimeout(5)
                answer = b""
                with contextlib.suppress(TimeoutError):
                    while b"}" not in answer and (chunk := conn.recv(65536)):
                        answer += chunk
                taken = time.monotonic() - started
                assert answer.startswith(b"HTTP/1.1 401"), (method, credentials, answer)
                assert taken < 1.0, f"401 after {taken:.2f} s"
                assert b"token" in answer
                if method == "POST" and not credentials:  # the body it promised is not awaited
                    assert closed_by_server(conn, within=KEEP_ALIVE_TIMEOUT + 3.0) is not None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/qos", b"{}", method="PATCH")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200  # with the token, the body is read as before
    # The schema still says 401 for each operation that needs the token.
    schema = json.loads(get(port, "/openapi.json")[1])
    assert "401" in schema["paths"]["/qos"]["patch"]["responses"]


#: Paths and methods they do not take, with every method each path takes.
NOT_ALLOWED = {
    ("PUT", "/qos"): "GET, POST, PATCH",
    ("DELETE", "/qos"): "GET, POST, PATCH",
    ("DELETE", "/stats"): "GET",
    ("PUT", "/timeline/record"): "GET, POST, DELETE",
    ("GET", "/flush"): "POST",
    ("POST", "/healthz"): "GET",
}


def test_a_405_names_every_method_its_path_takes(
    served: Callable[..., tuple[PublishingEngine, HttpServer, int]],
) -> None:
    """The bug: every 405 but POST /healthz had an empty `Allow`: FastAPI keeps an included
    router as one route with no `methods` of its own, so looking at each route's methods
    found none (already so on 800d263; no test read the header)."""
    _, _, port = served()
    for (method, path), allowed in NOT_ALLOWED.items():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            response.read()
            assert response.status == 405, (method, path)
            assert response.getheader("Allow") == allowed, (method, path)
        finally:
            conn.close()


#: Bodies that are not JSON, each with what its error must say.
NOT_JSON = {
    b"not json": "Expecting value at line 1 column 1",
    b"{bad": "Expecting property name enclosed in double quotes at line 1 column 2",
    b'{"egress": ': "Expecting value at line 1 column 12",
    b'{"egress": "\xff"}': "'utf-8' codec can't decode byte 0xff in position 12",  # not UTF-8
}


def test_a_body_that_is_not_json_is_400_naming_the_body(
    served: Callable[..., tuple[PublishingEngine, HttpServer, int]],
) -> None:
    """The bug: a body that is not JSON at all got 422 `[0]: JSON decode error`, naming no field;
    the README and the schema promise 400. Now 400, `body: not JSON: REASON at line L column
    C` (or why it is not even UTF-8 text)."""
    _, _, port = served()
    for method, path in (("POST", "/qos"), ("PATCH", "/qos"), ("POST", "/")):
        for body, reason in NOT_JSON.items():
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", body, method=method)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            error = json.loads(refused.value.read())["error"]
            refused.value.close()
            assert refused.value.code == 400, (method, path, body, error)
            assert error.startswith(f"body: not JSON: {reason}"), error
            assert "\n" not in error


def test_the_token_help_and_log_say_reads_need_it_too() -> None:
    """The bug: `--http-token` said "changes over HTTP need this token" and the start-up log
    "changes need the token", though reads need it too now."""
    from engine.cli.serve import TOKEN_HELP, _log_access

    for command in (["run", "--help"], ["http", "--help"]):
        shown = subprocess.run(
            [sys.executable, "-m", "engine.cli.main", *command],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        assert "reads as well as" in shown and "changes over HTTP need" not in shown, command
    assert "reads as well as changes" in TOKEN_HELP
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("linkshaper")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        _log_access("127.0.0.1", 8080, "t")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert records and "changes need the token" not in records[0], records
    assert "every request needs the token" in records[0]
