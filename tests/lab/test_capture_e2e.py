"""`linkshaper capture` against a real engine in the lab: a known UDP sequence through a lossy,
delayed link with a short queue; the capture must hold every datagram once, mark dropped
exactly those the server never got, and give the delays the server measured; and a capture
that reads nothing must cost neither packets nor unbounded memory."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from scapy.layers.inet import UDP

from engine.captures.pcapng import read_capture
from engine.lab.harness import Background, EngineProcess, probe
from engine.lab.lab import SERVER_IP, Lab
from engine.protocol.client import ControlClient
from engine.protocol.messages import (
    CaptureLost,
    CaptureRequest,
    Done,
    FateRecords,
    Subscribe,
)
from tests import ROOT
from tests.wait_helpers import wait_udp_bound

pytestmark = [pytest.mark.lab, pytest.mark.shared_lab]

StartEngine = Callable[..., EngineProcess]
COUNT = 1500
PORT = 6003


def wait_for_log(engine: EngineProcess, text: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while text not in engine.stderr():
        assert time.monotonic() < deadline, f"never logged {text!r}: {engine.stderr()}"
        time.sleep(0.05)


def test_the_capture_has_every_datagram_once_with_the_fate_the_server_saw(
    start_engine: StartEngine, lab: Lab, background: Background, tmp_path: Path
) -> None:
    """With the kernel fast path (the default), the other direction goes to the kernel in
    the middle of the stream: the first redirect on an interface made its clsact qdisc there
    then, which stops the interface for a moment, and a datagram this direction's worker
    sent meanwhile was lost though its send said it went (4 runs in 5 lost one; see
    KernelRedirect.prepare)."""
    engine = start_engine(
        {
            "egress": {"loss": 0.1, "latency": "5ms", "rate": "2mbit", "queue": {"packets": 10}},
            "ingress": {"latency": "1ms"},
        }
    )
    path = tmp_path / "fates.pcapng"
    capture = background.start([
        sys.executable, "-m", "engine.cli.main", "capture", str(path),
        "--control", engine.control, "--direction", "egress", "--seconds", "8",
    ])  # fmt: skip
    wait_for_log(engine, "egress: capturing fates")
    receiver = background.start(probe(lab, "server", "recv", str(PORT), "--idle", "1.5", "--each"))
    wait_udp_bound(lab, "server", PORT)
    with engine.client() as client:  # the ingress to the kernel a second from now
        client.patch({"ingress.latency": "0ms"}, source="test")
    subprocess.run(
        probe(lab, "client", "send", SERVER_IP, str(PORT), "--count", str(COUNT), "--pps", "1000"),
        check=True, cwd=ROOT, timeout=30,
    )  # fmt: skip
    received = json.loads(receiver.communicate(timeout=40)[0])["each_ms"]
    _, err = capture.communicate(timeout=30)
    assert capture.returncode == 0, err

    frames = [f for f in read_capture(str(path)) if UDP in f.packet and f.packet[UDP].dport == PORT]
    seqs = [struct.unpack("!I", bytes(f.packet[UDP].payload)[:4])[0] for f in frames]
    assert sorted(seqs) == list(range(COUNT))  # every datagram, each once
    assert {f.direction for f in frames} == {"egress"}
    fate_of = dict(zip(seqs, frames, strict=True))
    dropped = {seq for seq, f in fate_of.items() if f.fate != "forwarded"}
    assert dropped == set(range(COUNT)) - {int(seq) for seq in received}
    causes = {f.fate for seq, f in fate_of.items() if seq in dropped}
    assert "loss" in causes and len(dropped) > 0.05 * COUNT, causes
    # The delay each datagram got in the link, against what the server measured one way (the
    # sender's clock to the server kernel's stamp), which holds that delay and the crossings
    # to and from the engine: never less (0.1 ms for the two clocks' conversion), and the
    # typical one within 1 ms of it. A busy host can hold a single crossing back by ms (seen
    # in CI: 3 ms for 1 % of them), so that is a median, not every datagram.
    gaps = sorted(ms - fate_of[int(seq)].delay_ms for seq, ms in received.items())
    assert min(fate_of[int(seq)].delay_ms for seq in received) >= 5.0
    assert gaps[0] >= -0.1, gaps[:10]
    assert gaps[len(gaps) // 2] <= 1.0, gaps[len(gaps) // 2 :][:10]
    with engine.client() as client:
        ingress = client.stats().ingress
        assert ingress is not None and ingress.fast_path_switches >= 1  # (else it proved less)
    listed = subprocess.run(["tcpdump", "-n", "-r", str(path)], capture_output=True, text=True,
                            timeout=30, check=True)  # fmt: skip
    assert len(listed.stdout.splitlines()) == len(list(read_capture(str(path))))
    assert f"{len(list(read_capture(str(path))))} frames captured" in err


def test_a_capture_that_reads_nothing_costs_no_packet_and_bounded_memory(
    start_engine: StartEngine, lab: Lab, background: Background
) -> None:
    engine = start_engine({"egress": {"latency": "1ms"}})
    supervisor = psutil.Process(engine.process.pid)
    with ControlClient(engine.control) as client:
        reply = client.request(Subscribe(capture=CaptureRequest()))
        assert isinstance(reply, Done)
        wait_for_log(engine, "egress: capturing fates")
        before = supervisor.memory_info().rss
        receiver = background.start(probe(lab, "server", "recv", str(PORT), "--idle", "1.5"))
        wait_udp_bound(lab, "server", PORT)
        sent = 100_000  # 10 000 a second: about 100 batches, more than the outbox's 64
        subprocess.run(
            probe(lab, "client", "send", SERVER_IP, str(PORT), "--count", str(sent),
                  "--pps", "10000"),
            check=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        result = json.loads(receiver.communicate(timeout=40)[0])
        grown = supervisor.memory_info().rss - before
        assert result["received"] == sent  # forwarding went on, nothing lost
        assert grown < 64 * 1024 * 1024, grown  # the outbox: 64 batches of about 200 KB
        # Now read: once there is room, the capture is told how many records it missed.
        lab.run("client", "ping", "-c", "3", "-i", "0.2", SERVER_IP, check=False)
        lost = 0
        deadline = time.monotonic() + 20
        while lost == 0 and time.monotonic() < deadline:
            message = client.receive(0.5)
            if isinstance(message, CaptureLost):
                lost += message.records
            elif isinstance(message, FateRecords):
                lost += message.lost
            else:
                lab.run("client", "ping", "-c", "1", SERVER_IP, check=False)
        assert lost > 0
    wait_for_log(engine, "egress: capture ended")


def test_the_http_api_streams_the_same_capture(
    start_engine: StartEngine, lab: Lab, background: Background, tmp_path: Path
) -> None:
    engine = start_engine({"egress": {"latency": "3ms"}}, extra=("--http", "127.0.0.1:8080"))
    path = tmp_path / "http.pcapng"
    fetch = (
        "import sys, urllib.request\n"
        "url = 'http://127.0.0.1:8080/capture?seconds=4&direction=egress&snaplen=96'\n"
        "with urllib.request.urlopen(url, timeout=30) as r, open(sys.argv[1], 'wb') as f:\n"
        "    f.write(r.read())\n"
    )
    client = background.start(lab.in_ns("box", sys.executable, "-c", fetch, str(path)))
    wait_for_log(engine, "egress: capturing fates")
    lab.run("client", "ping", "-c", "5", "-i", "0.1", SERVER_IP, check=False)
    _, err = client.communicate(timeout=30)
    assert client.returncode == 0, err
    frames = list(read_capture(str(path)))
    pings = [f for f in frames if f.packet.haslayer("ICMP")]
    assert len(pings) == 5 and all(f.fate == "forwarded" and f.delay_ms >= 3 for f in pings)
    assert {f.direction for f in frames} == {"egress"}
    assert max(len(bytes(f.packet)) for f in frames) <= 96
    wait_for_log(engine, "egress: capture ended")
