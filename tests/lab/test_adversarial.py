"""The engine against an adversary: anyone who can reach the HTTP port or the control socket, or
write the spec file, or send frames on the link. Each test is one defect found that way (see
README, "Hardening"): after it, the engine still forwards, the spec in force is the one before,
no process died, and memory and CPU stayed bounded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine.core.frames import GSO_TCPV4, VNET_F_NEEDS_CSUM, VnetHeader
from engine.lab.harness import Background, EngineProcess, ping_rtts, ping_times, probe
from engine.lab.lab import CLIENT_IP, INNER, PREFIX_LEN, SERVER_IP, Lab
from engine.model.spec import Spec
from engine.protocol.control import read_authkey
from engine.protocol.messages import SetSpec
from tests import ROOT
from tests.frames_helpers import NOBODY
from tests.netns_thread import in_netns
from tests.wait_helpers import wait_reported_since, wait_udp_bound

pytestmark = pytest.mark.lab

StartEngine = Callable[..., EngineProcess]
PORT = 8091
BASE = f"http://127.0.0.1:{PORT}"
BOTH_5MS = {"ingress": {"latency": 5}, "egress": {"latency": 5}}


def request(
    lab: Lab,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, str]:
    """One HTTP request from inside the box, where the API listens on loopback."""

    def call() -> tuple[int, str]:
        req = urllib.request.Request(BASE + path, data=body, method=method)
        req.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    return in_netns(lab.ns("box"), call)


def read_answer(conn: socket.socket) -> bytes:
    """An HTTP answer's head and its body (as far as its Content-Length says)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def post_spec(lab: Lab, spec: Any, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return request(lab, "POST", "/qos", json.dumps(spec).encode(), headers)


def spec_of(engine: EngineProcess) -> Spec:
    with engine.client() as client:
        return client.get_spec()


def processes(engine: EngineProcess) -> list[psutil.Process]:
    with engine.client() as client:
        info = client.info()
    return [psutil.Process(pid) for pid in (info.supervisor_pid, *info.worker_pids.values())]


def cpu_share(procs: list[psutil.Process], seconds: float) -> float:
    """Share of one core the processes used over `seconds` (scheduler nanoseconds)."""

    def total() -> float:
        used = 0
        for process in procs:
            for task in Path(f"/proc/{process.pid}/task").iterdir():
                try:
                    used += int((task / "schedstat").read_text().split()[0])
                except OSError:
                    continue
        return used / 1e9

    before = total()
    time.sleep(seconds)
    return (total() - before) / seconds


def still_forwarding(lab: Lab) -> None:
    """Forwarding goes on: once a ping gets through (a change of thousands of flows takes
    the workers a moment), five in a row do."""
    deadline = time.monotonic() + 10
    while not ping_rtts(lab, count=1, interval=0.2):
        assert time.monotonic() < deadline, "no ping got through in 10 s"
    assert len(ping_rtts(lab, count=5, interval=0.05)) == 5


@pytest.fixture
def api(start_engine: StartEngine) -> EngineProcess:
    return start_engine(BOTH_5MS, extra=("--http", f"127.0.0.1:{PORT}"))


# --- security --------------------------------------------------------------------------------


def test_traces_over_http_cannot_read_the_machines_files(
    start_engine: StartEngine, lab: Lab, tmp_path: Path
) -> None:
    """The bug: `{"egress": {"trace": "/etc/shadow"}}` answered with the file's first line; a
    FIFO hung the whole API; /dev/zero read until memory ran out."""
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "ok.trace").write_text("1\n2\n3\n")
    secret = tmp_path / "secret"
    secret.write_text("root:$6$do-not-show-me:19000:0:99999:7:::\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    os.mkfifo(traces / "fifo.trace")
    engine = start_engine(
        BOTH_5MS, extra=("--http", f"127.0.0.1:{PORT}", "--trace-dir", str(traces))
    )
    before = spec_of(engine)
    for path in (
        str(secret),
        "/etc/shadow",
        "/proc/self/environ",
        str(fifo),
        "/dev/zero",
        engine.control.replace(".sock", ".key"),
        "../secret",
    ):
        started = time.monotonic()
        status, text = post_spec(lab, {"egress": {"trace": path}})
        assert status == 422, (path, status, text)
        assert spec_of(engine) == before
        assert time.monotonic() - started < 5
        assert "do-not-show-me" not in text and "root:" not in text
        assert "trace directory" in text or "--trace-dir" in text, text
        patch = json.dumps({"egress.trace": path}).encode()
        status, text = request(lab, "PATCH", "/qos", patch)
        assert status == 422 and "do-not-show-me" not in text
    # Inside the trace directory a FIFO is refused at once, and the API does not hang.
    started = time.monotonic()
    status, text = post_spec(lab, {"egress": {"trace": "fifo.trace"}})
    assert status == 422 and "not a regular file" in text and time.monotonic() - started < 5
    # Inside the trace directory, by name, a trace is taken (and stored with its full path).
    status, text = post_spec(lab, {"egress": {"trace": "ok.trace"}})
    assert status == 200, text
    assert spec_of(engine).default_link.egress.trace == str((traces / "ok.trace").resolve())
    good = spec_of(engine)
    # The key of the control socket is never echoed, whatever path names it.
    key = read_authkey(engine.control).hex()
    assert key not in text
    # The spec file and the control socket may name any file; a bad one is a clean error.
    with engine.client() as client:
        bad = client.request(SetSpec(spec=Spec.model_validate({"egress": {"trace": str(fifo)}})))
    assert getattr(bad, "message", "").startswith("default_link.egress.trace: cannot read")
    assert spec_of(engine) == good
    still_forwarding(lab)


def test_a_non_ascii_token_is_refused_not_a_crash(start_engine: StartEngine, lab: Lab) -> None:
    """The bug: a non-ASCII bearer token gave 500 (compare_digest on str)."""
    engine = start_engine(BOTH_5MS, extra=("--http", f"127.0.0.1:{PORT}", "--http-token", "s3cret"))

    def raw_request() -> bytes:
        body = b'{"egress": {"latency": 99}}'
        with socket.create_connection(("127.0.0.1", PORT), timeout=10) as conn:
            conn.sendall(
                b"POST /qos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer \xc3\xa9t\xc3\xa9\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            return read_answer(conn)

    answer = in_netns(lab.ns("box"), raw_request)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
    assert spec_of(engine).default_link.egress.latency == 5


def test_the_api_listens_on_loopback_unless_told_otherwise(
    start_engine: StartEngine, lab: Lab
) -> None:
    """`--http PORT` alone listens on loopback: the API changes the link, so opening it to the
    network takes an address (`:PORT`, `0.0.0.0:PORT`), and a warning says who can then."""
    engine = start_engine(BOTH_5MS, extra=("--http", str(PORT)))
    listening = lab.run("box", "ss", "-Hltn", check=False).stdout
    assert f"127.0.0.1:{PORT}" in listening, listening
    assert "HTTP API on http://127.0.0.1" in engine.stderr()


# --- crashes and freezes ---------------------------------------------------------------------

BAD_SPECS = {
    "rate 1e400mbit": b'{"egress": {"rate": "1e400mbit"}}',
    "rate 1e309": b'{"egress": {"rate": 1e309}}',
    "latency Infinity": b'{"egress": {"latency": Infinity}}',
    "loss NaN": b'{"egress": {"loss": NaN}}',
    "invalid UTF-8": b'{"egress": {"latency": "\xff\xfe5ms"}}',
    "nested deeply": b"[" * 100_000 + b"]" * 100_000,
}


def test_bad_numbers_and_encodings_never_kill_the_engine(api: EngineProcess, lab: Lab) -> None:
    """The bug: `"1e400mbit"`, `1e309` or invalid UTF-8 in the spec file ended the supervisor on
    SIGHUP (the link went down); over HTTP the same was a 500."""
    for name, text in BAD_SPECS.items():
        api.spec_path.write_bytes(text)
        lines_before = len(api.stderr().splitlines())
        api.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while len(api.stderr().splitlines()) == lines_before and time.monotonic() < deadline:
            time.sleep(0.05)
        new = api.stderr().splitlines()[lines_before:]
        assert api.process.poll() is None, name
        assert any("SIGHUP" in line and "keeping the spec in force" in line for line in new), new
        assert "Traceback" not in api.stderr(), name
        status, answer = request(lab, "POST", "/qos", text)
        assert status in (400, 422), (name, status, answer)
        assert len(answer) < 1000 and "\n" not in answer.strip(), (name, answer)
    assert spec_of(api).default_link.egress.latency == 5
    still_forwarding(lab)


@pytest.mark.parametrize("name", list(BAD_SPECS))
def test_a_start_with_a_bad_file_says_one_line(tmp_path: Path, name: str) -> None:
    spec = tmp_path / "spec.json"
    spec.write_bytes(BAD_SPECS[name])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "run",
            "lo",
            "lo",
            str(spec),
            "--control",
            str(tmp_path / "c.sock"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("linkshaper: "), result.stderr
    assert "Traceback" not in result.stderr


def test_huge_requests_are_refused_quickly_and_hold_up_nothing(
    api: EngineProcess, lab: Lab
) -> None:
    """The bug: a PATCH with 40,000 unknown keys took 10 s (800,000: an hour) in a quadratic
    error report while holding the spec lock: SIGHUP, worker restarts and SIGTERM waited."""
    many = json.dumps({f"egress.x{i}": 1 for i in range(40_000)}).encode()
    started = time.monotonic()
    status, text = request(lab, "PATCH", "/qos", many)
    assert status == 422 and "more than" in text and time.monotonic() - started < 5
    # The same number of unknown fields inside one spec: linear, and a short message.
    inside = json.dumps({"egress": {f"x{i}": 1 for i in range(40_000)}}).encode()
    started = time.monotonic()
    status, text = request(lab, "POST", "/qos", inside)
    assert status == 422 and time.monotonic() - started < 5
    assert "unknown field" in text and "and 39995 more" in text and len(text) < 1000

    # A body declared over the bound is refused before a byte of it is read (streamed ones:
    # tests/unit/test_http_limits.py).
    def declared_huge() -> bytes:
        with socket.create_connection(("127.0.0.1", PORT), timeout=10) as conn:
            conn.sendall(
                b"POST /qos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 17000000\r\n\r\n"
            )
            return read_answer(conn)

    answer = in_netns(lab.ns("box"), declared_huge)
    assert answer.startswith(b"HTTP/1.1 413") and b"larger than" in answer, answer[:200]
    # Meanwhile, a SIGHUP is served at once even while big requests are being validated.
    api.spec_path.write_text(json.dumps({"ingress": {"latency": 7}, "egress": {"latency": 5}}))
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            request(lab, "POST", "/qos", inside)

    workers = [threading.Thread(target=hammer, daemon=True) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.3)
        api.signal(signal.SIGHUP)
        deadline = time.monotonic() + 3
        while spec_of(api).default_link.ingress.latency != 7:
            assert time.monotonic() < deadline, "SIGHUP waited for the requests"
            time.sleep(0.05)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    still_forwarding(lab)


def test_the_control_socket_survives_garbage_and_silence(api: EngineProcess, lab: Lab) -> None:
    """The bugs: garbage as the first message made a thread die (UnboundLocalError) and never
    answer; a client that connected and said nothing blocked every other client, because the
    handshake ran in the one accept thread."""
    silent = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(5)]
    try:
        for conn in silent:
            conn.connect(api.control)
        started = time.monotonic()
        with api.client() as client:  # the handshake of a real client is not held up
            assert client.get_spec().default_link.egress.latency == 5
        assert time.monotonic() - started < 4  # not after the silent ones (5 s each)
        # Garbage instead of the handshake: dropped, and nothing else is affected.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as rude:
            rude.connect(api.control)
            rude.sendall(b"\x00\x00\x00\x05hello" + os.urandom(100))
        # Garbage after a good handshake: an error reply, and the connection goes on.
        with api.client() as client:
            link = client._conn
            for junk in (b"not json", b"\xff\xfe", b'{"type": "nope"}', b"[" * 50_000):
                link.send_bytes(junk)
                reply = json.loads(link.recv_bytes())
                assert reply["type"] == "error" and reply["message"].startswith("bad request")
            assert client.get_spec().default_link.egress.latency == 5
    finally:
        for conn in silent:
            conn.close()
    assert api.process.poll() is None
    still_forwarding(lab)


def _remake_inner(lab: Lab) -> None:
    """Make the box's inner veth (and the client's end of it) again, as the lab made them."""
    lab.run(
        "box",
        "ip",
        "link",
        "add",
        "name",
        INNER,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        lab.ns("client"),
    )
    lab.run("client", "ip", "addr", "add", f"{CLIENT_IP}/{PREFIX_LEN}", "dev", "eth0")
    lab.run("client", "ip", "link", "set", "dev", "eth0", "up")
    lab.run("box", "sysctl", "-qw", f"net.ipv6.conf.{INNER}.disable_ipv6=1")
    lab.run("box", "ip", "link", "set", "dev", INNER, "up")


def _states(engine: EngineProcess) -> dict[str, str]:
    with engine.client() as client:
        stats = client.stats()
    return {d.direction: d.interface_state for d in (stats.ingress, stats.egress) if d}


def _wait_for_states(engine: EngineProcess, wanted: set[str], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not set(_states(engine).values()) <= wanted or len(_states(engine)) < 2:
        assert time.monotonic() < deadline, _states(engine)
        time.sleep(0.1)


def test_an_interface_that_goes_down_or_away_is_waited_for(api: EngineProcess, lab: Lab) -> None:
    """The bugs: a deleted interface made the workers crash and restart about twice a second
    for ever (1.3 cores, a log line each time); when it came back, download stayed dead (the
    other worker sent on the old interface index); a link set down was survived only by a
    crash loop. Now: one line per change, no spinning, both sockets opened afresh."""
    still_forwarding(lab)
    procs = processes(api)
    for action in ("down", "delete"):
        lines_before = len(api.stderr().splitlines())
        if action == "down":
            lab.run("box", "ip", "link", "set", "dev", INNER, "down")
        else:
            lab.run("box", "ip", "link", "del", "dev", INNER)
        # Traffic the other way meets the missing interface too (its send fails).
        lab.run("server", "ping", "-c", "3", "-i", "0.1", "-W", "1", CLIENT_IP, check=False)
        _wait_for_states(api, {"down", "missing"})
        assert cpu_share(procs, 2.0) < 0.10  # waiting costs nothing (it spun 1.3 cores)
        _, metrics = request(lab, "GET", "/metrics")
        assert 'linkshaper_interface_up{direction="egress"} 0' in metrics
        new = api.stderr().splitlines()[lines_before:]
        assert len(new) <= 4, new  # once per change and direction, not twice a second
        assert "restarting" not in api.stderr() and "Traceback" not in api.stderr()
        if action == "down":
            lab.run("box", "ip", "link", "set", "dev", INNER, "up")
        else:
            _remake_inner(lab)
        _wait_for_states(api, {"up"})
        # Both ways work again: the worker that only sends on the interface re-opened too.
        still_forwarding(lab)
        assert len(ping_rtts(lab, count=5, interval=0.05)) == 5
        assert {p.pid for p in processes(api)} == {p.pid for p in procs}  # nothing restarted
    assert "forwarding again" in api.stderr()
    assert spec_of(api).default_link.egress.latency == 5


def test_replay_speed_is_bounded(api: EngineProcess, lab: Lab) -> None:
    """The bug: `replay?speed=inf` applied thousands of specs a second."""
    timeline = b'{"at": 0, "spec": {"egress": {"latency": 9}}}\n'
    for speed in ("inf", "1e9", "0", "-1", "nan"):
        status, text = request(lab, "POST", f"/timeline/replay?speed={speed}", timeline)
        assert status == 422, (speed, status, text)
    status, _ = request(lab, "POST", "/timeline/replay?speed=1000", timeline)
    assert status == 200
    # Timelines that would wait for ever, or that no reader can parse, are refused whole.
    for bad in (b'{"at": 1e400, "set": {"egress.latency": 5}}', b'{"at": 1, "ramp": Infinity,'
                b' "spec": {}}', b"[" * 100_000, b"\xff\xfe{}"):  # fmt: skip
        status, text = request(lab, "POST", "/timeline/replay", bad)
        assert status == 422 and "line 1" in text, (bad[:40], status, text)


# --- resource bounds -------------------------------------------------------------------------


def test_packets_held_for_delay_are_bounded_and_can_be_flushed(
    start_engine: StartEngine, lab: Lab, background: Background
) -> None:
    """The bug: an hour of latency set by mistake held every packet (worker 39 -> 182 MB in 5 s
    of UDP) and reverting released nothing for an hour. Now `queue.held_bytes` bounds it (the
    excess counted as held_full), and `linkshaper flush` (or POST /flush, or f in the TUI)
    drops what is held."""
    held_limit = 4 * 1024 * 1024
    mistake = {"latency": "3600s", "queue": {"held_bytes": held_limit}}
    flow = {"label": "probe", "flow": {"protocol": "udp", "port_min": 6000, "port_max": 6000}}
    engine = start_engine(
        {"flows": [{**flow, "link": {"egress": mistake}}]},  # ARP and ping stay unharmed
        extra=("--http", f"127.0.0.1:{PORT}"),
    )
    with engine.client() as client:
        worker = psutil.Process(client.info().worker_pids["egress"])
    rss_before = worker.memory_info().rss
    receiver = background.start(probe(lab, "server", "recv", "6000", "--idle", "1"))
    wait_udp_bound(lab, "server", 6000)
    sender = background.start(
        probe(
            lab,
            "client",
            "send",
            SERVER_IP,
            "6000",
            "--count",
            "30000",
            "--pps",
            "15000",
            "--size",
            "1200",
        )
    )
    sender.wait(timeout=30)
    wait_reported_since(engine, time.monotonic())
    with engine.client() as client:
        egress = client.stats().egress
    assert egress is not None
    assert egress.flows["probe"].held_bytes <= held_limit
    assert egress.flows["probe"].drops.held_full > 20_000
    assert worker.memory_info().rss - rss_before < held_limit + 32 * 1024 * 1024
    # Reverting the latency leaves what is held where it is; flushing drops it.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "set",
            "egress.latency=0",
            "--control",
            engine.control,
        ],
        check=True,
        cwd=ROOT,
        timeout=30,
    )
    flushed = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "flush",
            "--direction",
            "egress",
            "--control",
            engine.control,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=30,
    )
    assert "flushed" in flushed.stdout
    wait_reported_since(engine, time.monotonic())
    with engine.client() as client:
        egress = client.stats().egress
    assert egress is not None
    probe_link = egress.flows["probe"]
    assert probe_link.in_flight == 0 and probe_link.held_bytes == 0
    assert probe_link.drops.flushed > 0
    status, text = request(lab, "POST", "/flush?link=nosuch")
    assert status == 404 and "nosuch" in text
    status, text = request(lab, "POST", "/flush")
    assert status == 200
    receiver.kill()
    still_forwarding(lab)


def test_metrics_with_ten_thousand_flows_are_bounded(api: EngineProcess, lab: Lab) -> None:
    """The bug: /metrics with 10,000 flows was 17.8 MB and took 1.8 s. Now it lists the busiest
    100 links (`?links=N` for more) and says how many there are."""
    flows = [
        {"label": f"f{i}", "flow": {"ip": f"198.19.{i // 250}.{i % 250}"}} for i in range(10_000)
    ]
    status, text = post_spec(lab, {"default_link": BOTH_5MS, "flows": flows})
    assert status == 200, text[:300]
    started = time.monotonic()
    status, metrics = request(lab, "GET", "/metrics")
    elapsed = time.monotonic() - started
    assert status == 200 and len(metrics) < 1_000_000, len(metrics)
    assert 'linkshaper_links{listed="all"} 10001' in metrics
    assert elapsed < 5
    status, more = request(lab, "GET", "/metrics?links=1000")
    assert status == 200 and len(more) > len(metrics)
    still_forwarding(lab)


def _super_frame(gso_size: int) -> bytes:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    frame = Ether(dst=NOBODY) / IP(src=CLIENT_IP, dst=SERVER_IP) / TCP(dport=9) / (b"z" * 60_000)
    return VnetHeader(VNET_F_NEEDS_CSUM, GSO_TCPV4, 54, gso_size, 34, 16).pack() + bytes(frame)


def test_a_super_frame_claiming_one_byte_segments_is_refused_whole(
    start_engine: StartEngine, lab: Lab, background: Background
) -> None:
    """The bug: a GSO frame with `gso_size=1` made the shaped path cut 60 KB into 60,000 pieces
    in Python (ping max 379 ms meanwhile)."""
    engine = start_engine({"ingress": {"latency": 2}, "egress": {"latency": 2, "loss": 0.001}})
    pinger = background.start(
        lab.in_ns("client", "ping", "-n", "-c", "40", "-i", "0.05", SERVER_IP)
    )
    sender = subprocess.run(
        lab.in_ns("client", sys.executable, "-m", "tests.raw_frames", "send-vnet", "eth0"),
        input="\n".join(_super_frame(1).hex() for _ in range(20)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    result = json.loads(sender.stdout)
    assert result["sent"] == 20, result
    out, _ = pinger.communicate(timeout=30)
    times = ping_times(out)
    assert len(times) >= 38 and max(times) < 100, times
    wait_reported_since(engine, time.monotonic())
    with engine.client() as client:
        egress = client.stats().egress
        assert "restarting" not in engine.stderr()
    assert egress is not None and egress.total.drops.malformed == 20


def test_send_errors_are_logged_once_a_minute_with_the_reason(
    start_engine: StartEngine, lab: Lab
) -> None:
    """The bug: frames the far side's MTU cannot take were counted as tx_errors, never said."""
    lab.run("client", "ip", "link", "set", "dev", "eth0", "mtu", "4000")
    lab.run("box", "ip", "link", "set", "dev", INNER, "mtu", "4000")
    engine = start_engine({"ingress": {}, "egress": {"latency": 1}})
    lab.run(
        "client", "ping", "-c", "30", "-i", "0.02", "-s", "3000", "-W", "1", SERVER_IP, check=False
    )
    wait_reported_since(engine, time.monotonic())
    with engine.client() as client:
        egress = client.stats().egress
    assert egress is not None and egress.tx_errors >= 30
    said = [line for line in engine.stderr().splitlines() if "cannot send" in line]
    assert len(said) == 1, said
    assert "Message too long" in said[0] and "egress" in said[0]
    still_forwarding(lab)
