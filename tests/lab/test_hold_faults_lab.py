"""The connection faults that hold packets, in the lab with real clients: `slow_close` delays
curl's close by T (the server's FIN is held, and curl reads to the end of the stream) and the
capture tells each FIN forwarded, held, its delay T at least; and
`stall` holds a UDP stream once for T, then releases it in order, none lost."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import TCP

from engine.captures.pcapng import read_capture
from engine.lab.harness import Background, EngineProcess, probe
from engine.lab.lab import SERVER_IP, Lab
from tests.lab.test_capture_e2e import wait_for_log
from tests.wait_helpers import wait_udp_bound, wait_until

pytestmark = pytest.mark.lab

HOLD_S = 0.8
CURLS = 5
PORT = 8080
#: A server (PORT, COUNT and SIZE put before it) that answers each request with no
#: Content-Length, then closes: its client reads to the end of the stream, so curl is done
#: only once the server's FIN has come through.
SERVER = """
import socket
server = socket.create_server(("0.0.0.0", PORT))
server.settimeout(60)
for _ in range(COUNT):
    conn, _ = server.accept()
    conn.settimeout(10)
    request = b""
    while b"\\r\\n\\r\\n" not in request:
        chunk = conn.recv(4096)
        if not chunk:
            break
        request += chunk
    conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n" + b"x" * SIZE)
    conn.close()
"""


def serve(lab: Lab, background: Background, count: int, size: int) -> subprocess.Popen[str]:
    """The server, in the server's namespace, listening once this returns."""
    script = f"PORT, COUNT, SIZE = {PORT}, {count}, {size}\n{SERVER}"
    server = background.start(lab.in_ns("server", sys.executable, "-c", script))
    wait_until(lambda: tcp_listening(lab, "server", PORT), 15, "the HTTP server listening", 0.05)
    return server


def tcp_listening(lab: Lab, role: str, port: int) -> bool:
    listed = lab.run(role, "ss", "-H", "-n", "-l", "-t", check=False).stdout
    return any(line.split()[3].endswith(f":{port}") for line in listed.splitlines() if line.strip())


def test_slow_close_delays_curls_close_by_t_and_the_capture_tells_the_fin_held(
    lab: Lab, start_engine: Callable[..., EngineProcess], background: Background, tmp_path: Path
) -> None:
    engine = start_engine(
        {"default_link": {"ingress": {"slow_close": {"delay_ms": HOLD_S * 1000}}}}
    )
    server = serve(lab, background, CURLS, 1000)
    path = tmp_path / "held.pcapng"
    capture = background.start([
        sys.executable, "-m", "engine.cli.main", "capture", str(path), "--control",
        engine.control, "--direction", "ingress", "--seconds", "12",
    ])  # fmt: skip
    wait_for_log(engine, "ingress: capturing fates")
    took = []
    for _ in range(CURLS):
        curl = lab.run("client", "curl", "-s", "-o", "/dev/null", "-w", "%{time_total}",
                       "--max-time", "20", f"http://{SERVER_IP}:{PORT}/")  # fmt: skip
        took.append(float(curl.stdout))
    server.communicate(timeout=30)
    assert min(took) >= HOLD_S, took  # a delay is a floor: every close came T late
    assert statistics.median(took) < HOLD_S + 0.5, took  # and by T, not by a timeout
    with engine.client() as client:
        ingress = client.stats().ingress
    assert ingress is not None and ingress.total.held >= CURLS  # each FIN, counted held
    _, err = capture.communicate(timeout=30)
    assert capture.returncode == 0, err
    fins = [f for f in read_capture(str(path)) if TCP in f.packet
            and f.packet[TCP].sport == PORT and f.packet[TCP].flags.F]  # fmt: skip
    # one closing connection per curl (the server retransmits a FIN held longer than its RTO:
    # each copy is held too)
    assert len({f.packet[TCP].dport for f in fins}) == CURLS, fins
    assert all(f.fate == "forwarded" and "held" in f.marks for f in fins), fins
    assert min(f.delay_ms for f in fins) >= HOLD_S * 1000  # told with the hold in its delay


def test_a_stall_holds_a_udp_stream_once_for_t_then_in_order(
    lab: Lab, start_engine: Callable[..., EngineProcess], background: Background
) -> None:
    start_engine({"default_link": {"egress": {"stall": {"delay_ms": HOLD_S * 1000,
                                                        "within_s": 1}}}})  # fmt: skip
    receiver = background.start(probe(lab, "server", "recv", "6000", "--idle", "3", "--each"))
    wait_udp_bound(lab, "server", 6000)
    subprocess.run(probe(lab, "client", "send", SERVER_IP, "6000", "--count", "300", "--pps",
                         "100"), check=True, timeout=30)  # fmt: skip
    result = json.loads(receiver.communicate(timeout=60)[0])
    assert result["received"] == 300 and result["reordered"] == 0  # none lost, in order
    delays = {int(seq): ms / 1000 for seq, ms in result["each_ms"].items()}
    sent = {int(seq): at for seq, at in result["each_sent"].items()}
    held = sorted(seq for seq, delay in delays.items() if delay >= HOLD_S / 2)
    assert held == list(range(held[0], held[-1] + 1)), held  # one run: the stall came once
    assert max(delays.values()) >= HOLD_S  # the first held waited all of T (a floor)
    assert max(delays.values()) < HOLD_S + 0.3, max(delays.values())
    assert sent[held[0]] - sent[0] <= 1.0 + 0.25  # it began within its window (1 s)


def test_a_stall_holds_a_tcp_download_once_for_t(
    lab: Lab, start_engine: Callable[..., EngineProcess], background: Background
) -> None:
    """A megabyte, stalled somewhere in its first half: curl takes T longer at least."""
    stall = {"delay_ms": HOLD_S * 1000, "within_bytes": 500_000}
    engine = start_engine({"default_link": {"ingress": {"stall": stall}}})
    server = serve(lab, background, 1, 1_000_000)
    told = "%{time_total} %{size_download}"
    curl = lab.run("client", "curl", "-s", "-o", "/dev/null", "-w", told, "--max-time", "20",
                   f"http://{SERVER_IP}:{PORT}/")  # fmt: skip
    server.communicate(timeout=30)
    took, size = curl.stdout.split()
    assert int(size) == 1_000_000 and float(took) >= HOLD_S, curl.stdout
    with engine.client() as client:
        ingress = client.stats().ingress
    assert ingress is not None and ingress.total.held > 0
