"""The loads of `bench.shaped_cost`, each run with one shaper: TCP both ways beside a probe,
a probe alone, and one TCP stream with offloads off beside a probe (see its docstring)."""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.cpu_meter import MEASURED, WARMUP, CpuMeter
from bench.shapers import PROBE_PORT, Shaper, both_ways
from engine.lab.harness import (
    EngineProcess,
    iperf3,
    probe,
    received_bits_per_second,
    wire_packets,
)
from engine.lab.lab import SERVER_IP, Lab
from engine.model.spec import Spec

ROOT = Path(__file__).resolve().parent.parent
LATENCY_MS = 20
TCP_SECONDS = 10
#: The most TCP may buffer at the lab's endpoints for the offloads-off loads, where the kernel
#: tunes each socket's buffers up to it (`net.ipv4.tcp_rmem`/`tcp_wmem`, set in the client's
#: and the server's namespaces only). A stream can have no more in flight than the receiver
#: advertises and the sender keeps, and over a 20 ms round trip that caps it: with the
#: default send buffer (4 MiB at most) at about 1 Gbit/s, with `iperf3 -w 8M` (clamped to
#: the host's rmem_max and wmem_max, 4 MiB, then doubled) at a window of 5.2 MB, 2.0 Gbit/s,
#: which measured the endpoints, not the shaper: the round trip stayed at 20.5 ms, so no
#: queue formed in front of it. With this much the shaper is the bottleneck (a queue forms).
FRAMES_BUFFER_MAX = 64 * 1024 * 1024
#: Datagrams a second of the probe beside the offloads-off stream (see `frames_load`).
FRAMES_PROBE_PPS = 100


def resolve_server(lab: Lab) -> None:
    """ARP through a delayed link first, so that it does not delay the probe's first datagrams."""
    lab.run("client", "ping", "-c", "2", "-i", "0.2", SERVER_IP, check=False)


def probe_delays(lab: Lab, count: int, pps: int, during: Callable[[], None]) -> dict[str, float]:
    """Send `count` datagrams at `pps` from client to server while `during` runs beside;
    the receiver's one-way delay quantiles (ms)."""
    receiver = subprocess.Popen(
        probe(lab, "server", "recv", str(PROBE_PORT), "--idle", "1"),
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        time.sleep(0.3)
        sender = subprocess.Popen(
            probe(lab, "client", "send", SERVER_IP, str(PROBE_PORT), "--count", str(count),
                  "--pps", str(pps), "--size", "200"),
            cwd=ROOT,
        )  # fmt: skip
        try:
            during()
        finally:
            sender.wait(count / pps + 30)
        out, _ = receiver.communicate(timeout=30)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    return json.loads(out)  # type: ignore[no-any-return]


def tcp_load(
    lab: Lab, shaper: Shaper, rate_mbit: int, profiles: dict[str, str] | None = None
) -> dict[str, float]:
    """TCP both ways at 80 % of the rate, a probe beside it; CPU over the steady stretch."""
    spec = both_ways(f"{rate_mbit}mbit", LATENCY_MS, probe_link=True)
    with shaper.running(lab, spec) as running:
        resolve_server(lab)
        meter = CpuMeter(running, profiles is not None)
        queue_delays: list[float] = []
        report: dict[str, Any] = {}

        def load() -> None:
            report.update(iperf3(lab, seconds=TCP_SECONDS, omit=0, extra=(
                "--bidir", "-b", f"{rate_mbit * 0.8:.0f}M")))  # fmt: skip

        runner = threading.Thread(target=load)
        runner.start()

        def measure() -> None:
            time.sleep(WARMUP)
            meter.start()
            sample_queue_delays(running.engine, queue_delays, MEASURED)
            meter.stop()

        try:
            delays = probe_delays(lab, int(200 * (WARMUP + MEASURED)), 200, measure)
        finally:
            runner.join(TCP_SECONDS + 30)
    received = [
        float(stream["bits_per_second"])
        for stream in (report["end"]["sum_received"], report["end"]["sum_received_bidir_reverse"])
    ]
    if profiles is not None:
        profiles[f"TCP both ways at 80 % of {rate_mbit} Mbit/s"] = meter.profile_text
    return {
        "cpu": meter.percent,
        "up_mbit": received[0] / 1e6,
        "down_mbit": received[1] / 1e6,
        "delay_p1": delays["delay_p1_ms"],
        "delay_p99": delays["delay_p99_ms"],
        "queue_delay": statistics.median(queue_delays) if queue_delays else float("nan"),
    }


def sample_queue_delays(engine: EngineProcess | None, into: list[float], seconds: float) -> None:
    """The egress queue delay the engine reports, twice a second (linkshaper only), or just
    wait when the shaper reports none."""
    if engine is None:
        time.sleep(seconds)
        return
    end = time.monotonic() + seconds
    with engine.client() as control:
        while time.monotonic() < end:
            egress = control.stats().egress
            if egress is not None:
                into.append(egress.total.queue_delay_ms)
            time.sleep(0.5)


def sample_engine_delays(engine: EngineProcess | None, into: list[float], seconds: float) -> None:
    """The egress direction's p99 of arrival (the kernel's stamp) to release, as the engine
    measured it over each half second (linkshaper only): what the stream's frames waited,
    the receive buffer included, apart from any delay of the probe's own processes."""
    if engine is None:
        time.sleep(seconds)
        return
    end = time.monotonic() + seconds
    with engine.client() as control:
        while time.monotonic() < end:
            egress = control.stats().egress
            if egress is not None and egress.delay_samples:
                into.append(egress.delay_p99_ms)
            time.sleep(0.5)


def probe_alone(
    lab: Lab, shaper: Shaper, profiles: dict[str, str] | None = None
) -> dict[str, float]:
    """1000 datagrams a second through 20 ms each way, nothing else."""
    with shaper.running(lab, both_ways(None, LATENCY_MS)) as running:
        resolve_server(lab)
        meter = CpuMeter(running, profiles is not None)

        def measure() -> None:
            time.sleep(1.0)
            meter.start()
            time.sleep(MEASURED)
            meter.stop()

        delays = probe_delays(lab, 1000 * 7, 1000, measure)
    if profiles is not None:
        profiles["UDP probe alone, 1000/s"] = meter.profile_text
    return {"cpu": meter.percent, "delay_p1": delays["delay_p1_ms"],
            "delay_p99": delays["delay_p99_ms"]}  # fmt: skip


def open_windows(lab: Lab) -> None:
    """Let TCP at the lab's endpoints tune its buffers up to FRAMES_BUFFER_MAX (per namespace:
    the host's settings are untouched, and go with the lab)."""
    limits = f"4096 131072 {FRAMES_BUFFER_MAX}"
    for role in ("client", "server"):
        lab.run(role, "sysctl", "-qw", f"net.ipv4.tcp_rmem={limits}",
                f"net.ipv4.tcp_wmem={limits}")  # fmt: skip


def frames_load(
    lab: Lab, shaper: Shaper, spec: Spec, profiles: dict[str, str] | None = None
) -> dict[str, float]:
    """One TCP stream with offloads off: throughput, frames/s both ways, CPU; and beside it
    a probe of FRAMES_PROBE_PPS datagrams a second on the same link, whose one-way delay
    shows what the stream's queue and any stall of the shaper add to a packet."""
    open_windows(lab)
    with shaper.running(lab, spec) as running:
        meter = CpuMeter(running, profiles is not None)
        report: dict[str, Any] = {}
        runner = threading.Thread(
            target=lambda: report.update(iperf3(lab, seconds=TCP_SECONDS, omit=0))
        )
        runner.start()
        frames: list[int] = []

        def count_frames() -> None:  # both ways, on the server's interface
            frames.append(wire_packets(lab, "server", "rx") + wire_packets(lab, "server", "tx"))

        engine_delays: list[float] = []

        def measure() -> None:
            count_frames()
            meter.start()
            sample_engine_delays(running.engine, engine_delays, MEASURED)
            meter.stop()
            count_frames()

        try:
            time.sleep(WARMUP)
            delays = probe_delays(lab, int(MEASURED * FRAMES_PROBE_PPS), FRAMES_PROBE_PPS, measure)
        finally:
            runner.join(TCP_SECONDS + 30)
        saturated = engine_saturated(running.engine)
    sender = report["end"]["streams"][0]["sender"]
    if profiles is not None:
        profiles["offloads off, one TCP stream"] = meter.profile_text
    return {"cpu": meter.percent, "mbit": received_bits_per_second(report) / 1e6,
            "fps": (frames[1] - frames[0]) / MEASURED,
            "retransmits": float(sender.get("retransmits", 0)),
            "rtt_ms": sender.get("mean_rtt", 0) / 1000,
            "probe_p99": delays["delay_p99_ms"], "probe_max": delays["delay_max_ms"],
            "saturated": saturated,
            "engine_p99": max(engine_delays, default=float("nan"))}  # fmt: skip


def engine_saturated(engine: EngineProcess | None) -> float:
    """Frames linkshaper dropped unread, both directions ("engine saturated"); NaN for rush."""
    if engine is None:
        return float("nan")
    with engine.client() as control:
        stats = control.stats()
    return float(sum(d.engine_saturated for d in (stats.ingress, stats.egress) if d is not None))
