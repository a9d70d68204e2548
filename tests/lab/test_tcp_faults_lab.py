"""TCP connection faults in the lab, with real clients and a real server: `curl` of a large
file through `reset` after 100 kB fails with a reset (and the server's writes too), and a
capture shows the RSTs the engine made; `limit_data` hands the client about its bytes, then
end of file; a `toxicity` of 0.5 resets about half of 200 connections."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import TCP

from engine.captures.pcapng import read_capture
from engine.lab.harness import Background, EngineProcess
from engine.lab.lab import CLIENT_IP, CLIENT_IP6, SERVER_IP, SERVER_IP6, Lab
from tests.impairment_helpers import binomial_bounds
from tests.lab.test_capture_e2e import wait_for_log
from tests.lab.test_seeded_fates_e2e import wait_tcp_listening
from tests.wait_helpers import wait_reported_since

pytestmark = pytest.mark.lab

PORT = 8123
BODY = 5_000_000
HEADER = f"HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\nConnection: close\r\n\r\n".encode()
#: Serves `count` connections one after the other, each the HTTP response above (a body of
#: `size` bytes), and prints how each ended: "ok" (the client read it all and closed) or the
#: error its writes or its wait for the client's close met.
SERVER = textwrap.dedent("""
    import json, socket, sys
    size, count = int(sys.argv[1]), int(sys.argv[2])
    header = ("HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n"
              % size).encode()
    server = socket.create_server(("::", PORT), family=socket.AF_INET6, dualstack_ipv6=True)
    server.settimeout(60)
    ends = []
    for _ in range(count):
        conn, _ = server.accept()
        conn.settimeout(30)
        try:
            request = b""
            while b"\\r\\n\\r\\n" not in request:
                request += conn.recv(4096)
            conn.sendall(header)
            chunk = bytes(65536)
            for start in range(0, size, len(chunk)):
                conn.sendall(chunk[: size - start])
            conn.shutdown(socket.SHUT_WR)  # then wait for the client's end: a reset may come
            ends.append("ok" if conn.recv(1) == b"" else "more")
        except OSError as exc:
            ends.append(type(exc).__name__)
        conn.close()
    print(json.dumps(ends))
""").replace("PORT", str(PORT))
#: Opens `count` connections one after the other, reads each to its end, and prints how each
#: ended: "ok" (end of file) or the error its reads met.
CLIENTS = textwrap.dedent("""
    import json, socket, sys
    host, count = sys.argv[1], int(sys.argv[2])
    ends = []
    for _ in range(count):
        try:
            conn = socket.create_connection((host, PORT), timeout=30)
            conn.sendall(b"GET / HTTP/1.1\\r\\nHost: lab\\r\\n\\r\\n")
            while conn.recv(1 << 16):
                pass
            ends.append("ok")
        except OSError as exc:
            ends.append(type(exc).__name__)
        conn.close()
    print(json.dumps(ends))
""").replace("PORT", str(PORT))


def serve(lab: Lab, background: Background, size: int, count: int = 1) -> subprocess.Popen[str]:
    server = background.start(lab.in_ns("server", sys.executable, "-c", SERVER, str(size),
                                        str(count)))  # fmt: skip
    wait_tcp_listening(lab, "server", PORT)
    return server


def curl(lab: Lab, host: str, out: Path) -> subprocess.CompletedProcess[str]:
    url = f"http://[{host}]:{PORT}/big" if ":" in host else f"http://{host}:{PORT}/big"
    command = lab.in_ns("client", "curl", "-sS", "-g", "--max-time", "60", "-o", str(out), url)
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


@pytest.mark.parametrize("v6", [False, True])
def test_curl_through_a_reset_after_100_kb_fails_with_a_reset_seen_in_the_capture(
    lab: Lab, start_engine: Callable[..., EngineProcess], background: Background,
    tmp_path: Path, v6: bool,
) -> None:  # fmt: skip
    engine = start_engine({"ingress": {"reset": {"after_bytes": 100_000}}})
    path = tmp_path / "reset.pcapng"
    capture = background.start([
        sys.executable, "-m", "engine.cli.main", "capture", str(path), "--control",
        engine.control, "--direction", "ingress", "--seconds", "12", "--snaplen", "96",
    ])  # fmt: skip
    wait_for_log(engine, "ingress: capturing fates")
    server = serve(lab, background, BODY)
    fetched = curl(lab, SERVER_IP6 if v6 else SERVER_IP, tmp_path / "body")
    assert fetched.returncode == 56 and "Connection reset" in fetched.stderr, fetched
    assert json.loads(server.communicate(timeout=60)[0]) == ["ConnectionResetError"]
    received = (tmp_path / "body").stat().st_size + len(HEADER)
    assert received < 100_000, received  # (frame bytes count headers: less data than that)
    _, err = capture.communicate(timeout=30)
    assert capture.returncode == 0, err
    frames = [f for f in read_capture(str(path)) if TCP in f.packet]
    (trigger,) = [f for f in frames if f.fate == "reset" and f.packet[TCP].sport == PORT][:1]
    made = [f for f in frames if "injected" in f.marks]
    client, server_ip = (CLIENT_IP6, SERVER_IP6) if v6 else (CLIENT_IP, SERVER_IP)
    to_client = [f for f in made if f.packet.payload.dst == client]
    to_server = [f for f in made if f.packet.payload.dst == server_ip]
    assert to_client and to_server, [(f.fate, f.marks, f.packet.summary()) for f in frames[-9:]]
    rst = to_client[0].packet[TCP]
    assert "R" in str(rst.flags) and rst.seq == trigger.packet[TCP].seq
    back = to_server[0].packet[TCP]
    assert "R" in str(back.flags) and back.seq == trigger.packet[TCP].ack


def test_limit_data_set_live_hands_the_client_its_bytes_then_end_of_file(
    lab: Lab, start_engine: Callable[..., EngineProcess], background: Background, tmp_path: Path
) -> None:
    engine = start_engine({"ingress": {"latency": "1ms"}})  # then set live, as a user would
    subprocess.run([sys.executable, "-m", "engine.cli.main", "set", "--control", engine.control,
                    "ingress.limit_data.after_bytes=100000"], check=True, timeout=30)  # fmt: skip
    server = serve(lab, background, BODY)
    fetched = curl(lab, SERVER_IP, tmp_path / "body")
    assert fetched.returncode == 18, fetched  # a partial file: the connection was closed
    received = (tmp_path / "body").stat().st_size + len(HEADER)
    assert 100_000 <= received < 100_000 + 1500, received  # (less than a segment more)
    assert json.loads(server.communicate(timeout=60)[0])[0] in (
        "BrokenPipeError", "ConnectionResetError"
    )  # fmt: skip
    wait_reported_since(engine, time.monotonic())
    with engine.client() as client:
        ingress = client.stats().ingress
    assert ingress is not None and ingress.total.drops.reset >= 1


def test_a_toxicity_of_half_resets_about_half_of_200_connections(
    lab: Lab, start_engine: Callable[..., EngineProcess], background: Background
) -> None:
    start_engine({"ingress": {"reset": {"after_bytes": 20_000, "toxicity": 0.5}}})
    server = serve(lab, background, 100_000, count=200)
    command = lab.in_ns("client", sys.executable, "-c", CLIENTS, SERVER_IP, "200")
    clients = subprocess.run(command, capture_output=True, text=True, timeout=240)
    ends = json.loads(clients.stdout)
    assert set(ends) <= {"ok", "ConnectionResetError"}, ends
    low, high = binomial_bounds(200, 0.5)
    assert low <= ends.count("ConnectionResetError") <= high, ends.count("ok")
    served = json.loads(server.communicate(timeout=60)[0])
    assert served.count("ok") == ends.count("ok")  # the server saw the same connections reset
