"""The data plane never waits for the control plane, and a stuck part is noticed (issue 34,
item 8), with the real engine in the lab: a supervisor stopped while datagrams flow holds
none of them up; a worker stopped is found stalled, restarted, and a change made meanwhile
is answered with an error that says it is not in force; a worker that cannot be restarted
(no descriptors left) is retried until it can, and the supervisor stays."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from engine.daemon.worker_pool import STALL_AFTER
from engine.lab.harness import EngineProcess
from engine.lab.lab import SERVER_IP, Lab
from engine.protocol.client import ControlClient
from engine.protocol.control import ControlError
from engine.protocol.messages import (
    CaptureRequest,
    Message,
    StatsReport,
    Subscribe,
)
from tests.netns_thread import in_netns

StartEngine = Callable[..., EngineProcess]
PORT = 8093
BASE = f"http://127.0.0.1:{PORT}"
UDP_PORT = 9310
#: Datagrams a second through the link while the supervisor is stopped, and for how long it is
#: stopped: with a capture and a stats stream open, the worker's reports (fate records with
#: 128 bytes of each frame, base64) fill its pipe to the supervisor in about two seconds.
RATE = 1000
SUPERVISOR_STOP = 5.0
#: A datagram's one-way delay through a pass-through link, from the sender's clock to the
#: receiver's (one process): well under this on a busy 2-core machine; a worker blocked on its
#: pipe for the rest of the stop would hold them for seconds.
DELAY_BOUND = 0.5
#: Datagrams lost (of some 7,000): none on a correct engine; this much slack for the test's
#: own threads being late to read on a busy machine.
LOSS_BOUND = 0.01
#: A stalled worker is found after STALL_AFTER without a report (one a second at the least)
#: and restarted; a spawn takes a second or two on a loaded machine.
RESTART_BOUND = STALL_AFTER + 10.0


def request(lab: Lab, method: str, path: str, body: object = None) -> tuple[int, str]:
    """One HTTP request from inside the box, where the API listens on loopback."""

    def call() -> tuple[int, str]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(BASE + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=20) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    return in_netns(lab.ns("box"), call)


def worker_pid(engine: EngineProcess, direction: str) -> int:
    with engine.client() as client:
        return client.info().worker_pids[direction]


def lowest_free_fd(pid: int) -> int:
    used = {int(name) for name in os.listdir(f"/proc/{pid}/fd")}
    return min(set(range(len(used) + 1)) - used)


def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """`pid` stopped (SIGSTOP) for the block, and let go again whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def drained(
    client: ControlClient, stop: threading.Event, seen: list[Message] | None = None
) -> threading.Thread:
    """A thread that reads what a subscription sends (into `seen`, if given), until `stop`."""

    def run() -> None:
        with contextlib.suppress(Exception):
            while not stop.is_set():
                message = client.receive(0.2)
                if seen is not None and message is not None:
                    seen.append(message)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def udp_delays(lab: Lab, seconds: float, during: Callable[[], None]) -> tuple[int, list[float]]:
    """Send RATE datagrams a second from the client to the server for `seconds`, calling
    `during` meanwhile (from this thread); how many were sent, and each received one's
    one-way delay (both ends in this process, on one monotonic clock)."""
    received: list[float] = []
    ready = threading.Event()
    done = threading.Event()
    sent = [0]

    def receive() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind((SERVER_IP, UDP_PORT))
            sock.settimeout(0.2)
            ready.set()
            quiet_since = None
            while True:
                try:
                    data = sock.recv(2048)
                except TimeoutError:
                    if done.is_set():
                        quiet_since = quiet_since or time.monotonic()
                        if time.monotonic() - quiet_since > 1.0:
                            return
                    continue
                (stamp,) = struct.unpack_from("!d", data)
                received.append(time.monotonic() - stamp)

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            start = time.monotonic()
            end = start + seconds
            count = 0
            while (now := time.monotonic()) < end:
                due = start + count / RATE
                if due > now:
                    time.sleep(due - now)
                sock.sendto(struct.pack("!d", time.monotonic()) + bytes(64), (SERVER_IP, UDP_PORT))
                count += 1
            sent[0] = count
        done.set()

    receiver = threading.Thread(target=in_netns, args=(lab.ns("server"), receive, 60 + seconds))
    receiver.start()
    assert ready.wait(10), "the receiver did not start"
    sender = threading.Thread(target=in_netns, args=(lab.ns("client"), send, 60 + seconds))
    sender.start()
    try:
        during()
    finally:
        sender.join(60 + seconds)
        receiver.join(60 + seconds)
    return sent[0], received


@pytest.mark.lab
def test_a_stopped_supervisor_holds_up_no_datagram(start_engine: StartEngine, lab: Lab) -> None:
    """With a stats stream and a capture open (both directions' reports flow ten a second,
    with a record of every frame), the supervisor is stopped for SUPERVISOR_STOP while
    datagrams flow: none is delayed beyond DELAY_BOUND (before: a worker blocked on its full
    pipe held them for seconds), and the reports it could not take are counted."""
    engine = start_engine({})
    stop = threading.Event()
    with engine.client() as stream, engine.client() as capture:
        stream.request(Subscribe())
        capture.request(Subscribe(capture=CaptureRequest(snaplen=128)))
        readers = [drained(stream, stop), drained(capture, stop)]
        with engine.client() as client:
            supervisor = client.info().supervisor_pid

        def stop_the_supervisor() -> None:
            time.sleep(1.0)
            with stopped(supervisor):
                time.sleep(SUPERVISOR_STOP)

        try:
            sent, delays = udp_delays(lab, SUPERVISOR_STOP + 2.0, stop_the_supervisor)
        finally:
            stop.set()
            for reader in readers:
                reader.join(5)
    print(f"sent {sent}, received {len(delays)}, max delay {max(delays) * 1000:.1f} ms")
    assert sent > RATE * SUPERVISOR_STOP
    assert len(delays) >= sent * (1 - LOSS_BOUND), (sent, len(delays))
    assert max(delays) < DELAY_BOUND, f"a datagram waited {max(delays):.3f} s"
    with engine.client() as client:
        stats = client.stats()
    assert stats.egress is not None and stats.ingress is not None
    # Stopped five seconds, the supervisor could not take some of what the workers sent.
    dropped = stats.egress.reports_dropped + stats.ingress.reports_dropped
    print(f"reports dropped or superseded: {dropped}")
    assert dropped > 0
    assert engine.process.poll() is None


@pytest.mark.lab
def test_a_stopped_worker_is_found_stalled_and_restarted(
    start_engine: StartEngine, lab: Lab
) -> None:
    """A worker stopped for longer than STALL_AFTER: a PATCH meanwhile is answered 503 with an
    error naming the direction (before: 200, not in force); the worker is found stalled (the
    log, the stats, /metrics) and restarted with a new pid within RESTART_BOUND; then a PATCH
    is in force again."""
    engine = start_engine({}, extra=("--http", f"127.0.0.1:{PORT}"))
    old = worker_pid(engine, "egress")
    seen: list[Message] = []
    stop = threading.Event()
    with engine.client() as stream:
        stream.request(Subscribe())
        reader = drained(stream, stop, seen)
        try:
            with stopped(old):
                code, body = request(lab, "PATCH", "/qos", {"egress.latency": "7ms"})
                assert code == 503, (code, body)
                error = json.loads(body)["error"]
                assert error.startswith("egress worker: change not in force"), error
                assert "(stalled; restarting)" in error and "ingress" not in error
                until(lambda: worker_pid(engine, "egress") != old, RESTART_BOUND, "a new worker")
        finally:
            stop.set()
            reader.join(5)
    states = [
        m.stats.worker_state for m in seen
        if isinstance(m, StatsReport) and m.stats.direction == "egress"
    ]  # fmt: skip
    assert "stalled" in states, states  # the stream (and so the TUI) was told
    with engine.client() as client:
        stats = client.stats()
    assert stats.egress is not None and stats.egress.worker_stalls == 1
    assert stats.ingress is not None and stats.ingress.worker_stalls == 0
    assert stats.egress.worker_state == "running"
    assert "egress worker (pid" in engine.stderr() and "stalled" in engine.stderr()
    code, metrics = request(lab, "GET", "/metrics")
    assert code == 200
    assert 'linkshaper_worker_stalls_total{direction="egress"} 1' in metrics
    # The change made meanwhile is what the new worker has; a new one is in force at once.
    code, body = request(lab, "PATCH", "/qos", {"egress.latency": "9ms"})
    assert code == 200, (code, body)
    assert engine.process.poll() is None


@pytest.mark.lab
def test_a_stopped_worker_is_found_stalled_however_often_stats_are_asked_for(
    start_engine: StartEngine,
) -> None:
    """Someone asks for stats every 0.3 s (a dashboard, `linkshaper stats --once` in a loop)
    while a worker is stopped: each question is a message to the worker, and the worker is
    still found stalled and restarted within RESTART_BOUND (before: every question counted
    as work that kept it busy, so a poll more often than STALL_AFTER hid the stall for ever
    and /stats said "running")."""
    engine = start_engine({})
    old = worker_pid(engine, "egress")
    with stopped(old), engine.client() as client:
        deadline = time.monotonic() + RESTART_BOUND
        while worker_pid(engine, "egress") == old:
            assert time.monotonic() < deadline, "the stopped worker was never restarted"
            client.stats()
            time.sleep(0.3)
    with engine.client() as client:
        stats = client.stats()
    assert stats.egress is not None and stats.egress.worker_stalls == 1
    assert engine.process.poll() is None


@pytest.mark.lab
def test_a_worker_that_cannot_be_restarted_is_retried(start_engine: StartEngine) -> None:
    """The supervisor's descriptors used up (its soft limit lowered under the descriptors it
    has open, so that `Pipe()` fails with EMFILE), a worker is killed: the supervisor logs the
    failure, stays, and tries again with growing pauses; once descriptors are there again, the
    worker is back (before: the supervisor exited and the link went down)."""
    engine = start_engine({})
    with engine.client() as client:
        info = client.info()
    supervisor, old = info.supervisor_pid, info.worker_pids["egress"]
    limits = resource.prlimit(supervisor, resource.RLIMIT_NOFILE)
    # Every descriptor number under the limit in use (what the supervisor polls stays under
    # it, or poll() itself would fail): the worker's pipe, once closed, leaves one free, and
    # a start needs several.
    resource.prlimit(supervisor, resource.RLIMIT_NOFILE, (lowest_free_fd(supervisor), limits[1]))
    try:
        os.kill(old, signal.SIGKILL)

        def failures() -> int:
            assert engine.process.poll() is None, f"the supervisor exited: {engine.stderr()}"
            return engine.stderr().count("egress worker cannot be restarted")

        until(lambda: failures() >= 3, 30, "three failed restarts")
        assert engine.process.poll() is None, engine.stderr()
        assert "Too many open files" in engine.stderr()
    finally:
        resource.prlimit(supervisor, resource.RLIMIT_NOFILE, limits)
    until(lambda: "egress worker restarted as pid" in engine.stderr(), 20, "a restart")
    new = worker_pid(engine, "egress")
    assert new != old
    with engine.client() as client:
        assert client.patch({"egress.latency": "3ms"}).default_link.egress.latency == 3


@pytest.mark.lab
def test_a_client_in_a_hurry_is_told_what_became_of_its_change(start_engine: StartEngine) -> None:
    """A client whose own reply timeout (1 s) is shorter than the engine's wait for a stopped
    worker was told "no answer" while the engine put its change in force (the second attacker
    pass). A change now waits for the engine's answer (at least MIN_CHANGE_WAIT), which says
    the change is kept and which worker does not have it yet."""
    engine = start_engine({})
    with (
        stopped(worker_pid(engine, "egress")),
        ControlClient(engine.control, timeout=1.0) as hurried,
        pytest.raises(ControlError) as told,
    ):
        hurried.patch({"egress.latency": "7ms"})
    said = str(told.value)
    assert said.startswith("egress worker: change not in force"), said
    assert "the change is kept" in said, said
    with engine.client() as client:
        assert client.get_spec().default_link.egress.latency == 7.0
