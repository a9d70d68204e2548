"""The HTTP API's budget with the real engine in the lab (root): slowloris, large bodies, the
API started before its engine. The rest, on loopback without root, is
tests/unit/test_http_budget.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
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

from engine.daemon.hosted import enter_netns
from engine.kernel.processes import stop_process
from engine.lab.lab import Lab
from engine.protocol.client import wait_for_engine
from engine.protocol.control import ControlError
from engine.web.body_limits import MAX_BODY
from tests.netns_thread import in_netns

PORT = 8096


BASE = f"http://127.0.0.1:{PORT}"


BOTH_5MS = {"ingress": {"latency": 5}, "egress": {"latency": 5}}


#: The engine's descriptor limit in the slowloris test (soft and hard: it cannot raise it).
LOW_LIMIT = 512


#: Half-open connections the attacker opens, in all: well past LOW_LIMIT.
ATTACK_CONNECTIONS = 3000


#: New attack connections a second (bounded so that the attacker does not take the machine's
#: two cores from the engine: the test is about descriptors, not CPU).
ATTACK_RATE = 150.0


#: Bytes the engine may log during the whole attack (the bug: 107 MB in 40 s).
MAX_LOG = 20_000


#: A slowloris's head, sent at once: a head never finished (its lines trickle after it).
UNFINISHED_HEAD = b"GET /qos HTTP/1.1\r\nHost: x\r\n"


#: The slow-body slowloris's: a whole head promising a body that then trickles a byte at a time.
PROMISED_BODY = b"POST /qos HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"


class Slowloris:
    """Connections that each send `head` (UNFINISHED_HEAD by default), then `trickle` every few
    seconds and never finish their request, opened at ATTACK_RATE in the box's namespace."""

    def __init__(
        self, namespace: str, head: bytes = UNFINISHED_HEAD, trickle: bytes = b"X-a: b\r\n"
    ) -> None:
        self.namespace = namespace
        self.head = head
        self.trickle = trickle
        self.sockets: list[socket.socket] = []
        self.opened = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="slowloris")

    def __enter__(self) -> Slowloris:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(30)
        for conn in self.sockets:
            conn.close()

    def wait_opened(self, count: int, timeout: float = 30.0) -> None:
        """Until `count` connections are open (the attack still running), or fail."""
        deadline = time.monotonic() + timeout
        while self.opened < count:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.1)

    def _run(self) -> None:
        enter_netns(self.namespace)
        started = time.monotonic()
        next_trickle = started + 3.0
        while not self.stop.is_set() and self.opened < ATTACK_CONNECTIONS:
            due = started + self.opened / ATTACK_RATE
            if time.monotonic() < due:
                self.stop.wait(due - time.monotonic())
                continue
            conn = socket.socket()
            conn.settimeout(0.2)
            self.opened += 1
            try:
                conn.connect(("127.0.0.1", PORT))
                conn.sendall(self.head)
            except OSError:
                pass  # refused or not accepted: the attacker keeps it open all the same
            self.sockets.append(conn)
            if time.monotonic() > next_trickle:
                next_trickle = time.monotonic() + 3.0
                for held in self.sockets:
                    with contextlib.suppress(OSError):
                        held.send(self.trickle)


def timed_get(lab: Lab, path: str, timeout: float) -> tuple[int, float, bytes]:
    """Status (0: no answer within `timeout`), seconds taken and body of one GET in the box."""

    def call() -> tuple[int, float, bytes]:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(BASE + path, timeout=timeout) as response:
                return response.status, time.monotonic() - started, response.read()
        except urllib.error.HTTPError as error:
            return error.code, time.monotonic() - started, error.read()
        except OSError:
            return 0, time.monotonic() - started, b""

    return in_netns(lab.ns("box"), call)


@contextlib.contextmanager
def http_engine(
    lab: Lab, tmp_path: Path, descriptors: int | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The engine with `--http` on the box's loopback, under a descriptor limit of
    `descriptors` if given (soft and hard, as `ulimit -n` sets it)."""
    prefix: list[str] = []
    if descriptors is not None:
        prlimit = shutil.which("prlimit")
        if prlimit is None:
            pytest.skip("prlimit (util-linux) is not installed")
        prefix = [prlimit, f"--nofile={descriptors}:{descriptors}", "--"]
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(BOTH_5MS))
    control = str(tmp_path / "control.sock")
    stderr_path = tmp_path / "engine.stderr"
    command = lab.engine_command(str(spec_path), control, "--http", f"127.0.0.1:{PORT}")
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen([*prefix, *command], stderr=stderr)
    try:
        try:
            wait_for_engine(control, 15.0, alive=lambda: process.poll() is None)
        except ControlError as exc:
            raise RuntimeError(f"{exc}: {stderr_path.read_text()}") from None
        yield process, stderr_path
    finally:
        stop_process(process)


@pytest.fixture
def low_limit_engine(lab: Lab, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The engine with `--http` on the box's loopback, under a descriptor limit of LOW_LIMIT."""
    with http_engine(lab, tmp_path, LOW_LIMIT) as engine:
        yield engine


@pytest.mark.lab
def test_slowloris_leaves_the_api_answering_and_a_killed_worker_restarted(
    lab: Lab, low_limit_engine: tuple[subprocess.Popen[bytes], Path]
) -> None:
    """The bug: half-open connections used every descriptor: `GET /qos` timed out, asyncio
    logged `socket.accept() out of system resource` without end, and a killed worker could not
    be restarted (Pipe(): EMFILE), so the supervisor exited. Now a head must be complete
    within a few seconds, connections are capped below the descriptor limit with a reserve
    kept, and at the cap the oldest connection still waiting for its head makes room."""
    process, stderr_path = low_limit_engine
    with Slowloris(lab.ns("box")) as attack:
        attack.wait_opened(LOW_LIMIT + 100)  # past the limit: every descriptor, before
        answers = [timed_get(lab, "/qos", timeout=5.0) for _ in range(5)]
        assert all(status == 200 for status, _, _ in answers), answers
        slowest = max(taken for _, taken, _ in answers)
        assert slowest < 1.0, f"GET /qos took {slowest:.2f} s under the attack"
        # A worker killed now is restarted: the reserve keeps what a restart needs.
        status, _, body = timed_get(lab, "/info", timeout=5.0)
        assert status == 200
        old = json.loads(body)["worker_pids"]
        os.kill(old["egress"], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, stderr_path.read_text()[-2000:]
            status, _, body = timed_get(lab, "/info", timeout=5.0)
            pids = json.loads(body)["worker_pids"] if status == 200 else {}
            if pids.get("egress") not in (None, old["egress"]):
                break
            assert time.monotonic() < deadline, f"the egress worker was not restarted: {pids}"
            time.sleep(0.2)
        assert attack.thread.is_alive(), "the attack ended before the checks did"
    assert process.poll() is None
    logged = stderr_path.stat().st_size
    assert logged < MAX_LOG, f"{logged} bytes logged: {stderr_path.read_text()[:2000]}"


@pytest.mark.lab
def test_a_slowloris_trickling_bodies_leaves_the_api_answering(
    lab: Lab, low_limit_engine: tuple[subprocess.Popen[bytes], Path]
) -> None:
    """The bug: connections that each sent a whole head promising a 1 MB body, then a byte now
    and then, counted as busy for up to BODY_TIMEOUT: at the cap every new connection was
    refused, `GET /qos` got `Connection reset`. Now a connection waiting on its client's body
    is shed at the cap like one waiting for a head, the oldest first."""
    process, _ = low_limit_engine
    with Slowloris(lab.ns("box"), head=PROMISED_BODY, trickle=b"x") as attack:
        attack.wait_opened(LOW_LIMIT + 100)  # past the cap, well within MIN_BODY_RATE's
        answers = [timed_get(lab, "/qos", timeout=5.0) for _ in range(10)]
        assert all(status == 200 for status, _, _ in answers), answers
        slowest = max(taken for _, taken, _ in answers)
        assert slowest < 1.0, f"GET /qos took {slowest:.2f} s under the attack"
        assert attack.thread.is_alive(), "the attack ended before the checks did"
    assert process.poll() is None


#: Concurrent large bodies sent to the real engine, each LARGE_BODY bytes of JSON (one line).
LARGE_BODIES = 20


LARGE_BODY = 15_000_000


#: What each batch of those may make the supervisor's RSS grow by: MAX_BODIES_BYTES of bodies
#: (one at a time) and their parsing (a replay's line of numbers: ~165 MB each, measured) with
#: room for the allocator; the bug: 138 MB -> 1,920 MB.
MAX_RSS_GROWTH = 500 * 1024 * 1024


def post_raw(port: int, path: str, body: bytes, timeout: float = 60.0) -> tuple[int, bytes]:
    """Status (0: no answer) and body of one POST of `body`, sent as it is."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError as error:
        return 0, str(error).encode()


@pytest.mark.lab
def test_concurrent_large_bodies_are_bounded_in_sum(lab: Lab, tmp_path: Path) -> None:
    """The bug: the 16 MiB cap was per body; 20 concurrent 15 MB bodies took the supervisor
    from 138 MB to 1.9 GB (and kept it). Now bodies being read at once hold at most
    MAX_BODIES_BYTES (by declared length): the rest get a clear 503 at once, the supervisor
    grows by less than MAX_RSS_GROWTH and answers afterwards."""
    import psutil

    numbers = b"[" + b"0," * ((LARGE_BODY - 40) // 2) + b"0]"
    bodies = {
        "/qos": b'{"ingress": {}, "egress": {}, "x": ' + numbers + b"}",
        "/timeline/replay": b'{"at": 0, "set": {"egress.latency": ' + numbers + b"}}\n",
    }
    with http_engine(lab, tmp_path) as (process, stderr_path):
        supervisor = psutil.Process(process.pid)
        assert "run" in supervisor.cmdline(), supervisor.cmdline()
        for path, body in bodies.items():
            assert len(body) <= MAX_BODY
            before = supervisor.memory_info().rss
            answers: list[tuple[int, bytes]] = []
            peak = before

            def send(
                body: bytes = body, path: str = path, answers: list[tuple[int, bytes]] = answers
            ) -> None:
                answers.append(in_netns(lab.ns("box"), lambda: post_raw(PORT, path, body)))

            senders = [threading.Thread(target=send) for _ in range(LARGE_BODIES)]
            for sender in senders:
                sender.start()
            while any(sender.is_alive() for sender in senders):
                peak = max(peak, supervisor.memory_info().rss)
                for sender in senders:
                    sender.join(0.05)
            assert len(answers) == LARGE_BODIES
            busy = [json.loads(text)["error"] for status, text in answers if status == 503]
            assert busy and all("requests are being read already" in e for e in busy), answers
            assert all(status in (400, 422, 503) for status, _ in answers), answers
            grown = peak - before
            assert grown < MAX_RSS_GROWTH, f"{path}: RSS grew by {grown / 1e6:.0f} MB"
            print(f"{path}: {len(busy)} of {LARGE_BODIES} got 503, RSS +{grown / 1e6:.0f} MB")
        assert timed_get(lab, "/qos", timeout=5.0)[0] == 200
        assert process.poll() is None, stderr_path.read_text()[-2000:]


@pytest.mark.lab
def test_linkshaper_http_started_before_its_engine_waits_for_it(
    start_engine: Callable[..., object], lab: Lab, tmp_path: Path
) -> None:
    """`linkshaper http` started first (compose, systemd and scripts start both at once):
    it waits for the engine and then serves it (before: it exited at once, `no engine at
    ...`, and the API never came up: tests/lab/test_netns.py lost that race now and then)."""
    from engine.lab.harness import EngineProcess

    workdir = tmp_path / "engine"
    workdir.mkdir()
    control = workdir / "control.sock"  # where EngineProcess puts it
    port = PORT + 1
    http = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns("box"), sys.executable, "-m", "engine.cli.main", "http",
         "--control", str(control), "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # nothing listens on the control socket for a while
        assert http.poll() is None, http.communicate(timeout=5)[1]
        engine = EngineProcess(lab, workdir, {}, "spec.json", (), None)
        try:
            engine.wait_ready()
            assert str(engine.control) == str(control)

            def answered() -> int:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/qos", timeout=5) as r:
                        return int(r.status)
                except OSError:
                    return 0

            deadline = time.monotonic() + 30
            while in_netns(lab.ns("box"), answered) != 200:
                assert http.poll() is None, http.communicate(timeout=5)[1]
                assert time.monotonic() < deadline, "the HTTP API never came up"
                time.sleep(0.2)
        finally:
            engine.close()
    finally:
        http.terminate()
        http.communicate(timeout=10)  # and its stderr pipe closed
