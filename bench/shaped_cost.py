"""What shaping costs: the CPU of the engine's processes while it shapes, against the seed's
engine (rush) in the same run, and the timing it gets at that cost (the efficiency issue).

Each load runs once per shaper per round, shapers interleaved, in the bench's lab:

1. TCP both ways (iperf3 `--bidir`) at 80 % of a 20 and of a 100 Mbit/s link with 20 ms each
   way, so that the queue stays short; beside it a UDP probe at 200 packets/s on a flow link
   of its own with the same latency and no rate (so its one-way delay shows how punctually
   the engine releases under that load, not the TCP queue it would share), and the queue
   delay the engine reports for the TCP traffic (linkshaper only).
2. A UDP probe alone at 1000 packets/s through 20 ms each way: one-way delay p1 and p99.
3. Offloads off, 10 ms each way and no rate limit, one TCP stream: every frame a wire packet.
   Throughput, frames a second through the engine (both ways, counted on the server's
   interface) and CPU per 10 k frames a second; linkshaper's straight path for reference.
   Beside the stream, on the same link, a probe at 100 packets/s: its one-way delay's p99
   and maximum, what the stream's queue and any stall of the shaper add to a packet.

CPU is a share of one core: the scheduler's nanoseconds of every thread of every process of
the shaper over the measured stretch (`bench.passthrough.cpu_seconds`). The seed's engine is
measured only when `LINKSHAPER_BENCH_RUSH` names its binary (build it from the seed's `rush/`
folder, see the README); never part of this repository.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.passthrough import cpu_seconds, engine_processes
from engine.lab.harness import (
    EngineProcess,
    iperf3,
    probe,
    received_bits_per_second,
    wire_packets,
)
from engine.lab.lab import INNER, OUTER, SERVER_IP, Lab
from engine.model.spec import PASS_THROUGH, Spec, seed_view

ROOT = Path(__file__).resolve().parent.parent
RUSH_VARIABLE = "LINKSHAPER_BENCH_RUSH"
LATENCY_MS = 20
TCP_SECONDS = 10
#: The stretch of each TCP run whose CPU is counted: after slow start, before the end.
WARMUP = 3.0
MEASURED = 5.0
PROBE_PORT = 5400
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


@dataclass
class Running:
    """A shaper while it runs: its processes, and linkshaper's engine (None for the seed's)."""

    processes: list[psutil.Process]
    engine: EngineProcess | None = None


@dataclass
class Shaper:
    """A way to shape the lab's box: linkshaper with some options, or the seed's engine."""

    name: str
    extra: tuple[str, ...] = ()
    rush: str | None = None

    @contextlib.contextmanager
    def running(self, lab: Lab, spec: Spec) -> Iterator[Running]:
        """The shaper running in the box with `spec`."""
        with tempfile.TemporaryDirectory() as workdir:
            if self.rush is None:
                engine = EngineProcess(lab, Path(workdir), spec, extra=self.extra)
                try:
                    engine.wait_ready()
                    yield Running(engine_processes(engine), engine)
                finally:
                    engine.close()
                return
            spec_path = Path(workdir) / "spec.json"
            spec_path.write_text(json.dumps(seed_view(spec)))
            profiles = (
                str(Path(workdir) / "ingress.profile"),
                str(Path(workdir) / "egress.profile"),
            )
            process = subprocess.Popen(
                lab.in_ns("box", self.rush, OUTER, INNER, str(spec_path), *profiles),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(1.0)  # it prints nothing when ready: give it the time it takes
                if process.poll() is not None:
                    raise RuntimeError(f"{self.rush} exited with {process.returncode}")
                yield Running([psutil.Process(process.pid)])  # `ip netns exec` execs: same pid
            finally:
                process.kill()
                process.wait(10)


#: linkshaper's modes in the table: its default, and the one that buys precision with CPU.
MODES = ("", "--precise")


def shapers(modes: tuple[str, ...] = MODES) -> list[Shaper]:
    found = [Shaper(f"linkshaper {mode}".strip(), tuple(mode.split())) for mode in modes]
    rush = os.environ.get(RUSH_VARIABLE)
    if rush:
        found.append(Shaper("rush (seed)", rush=rush))
    return found


def both_ways(rate: str | None, latency_ms: int, probe_link: bool = False) -> Spec:
    """`rate` and `latency_ms` each way; with `probe_link`, the probe's datagrams take a flow
    link of their own with the same latency and no rate limit, so that they measure when the
    engine releases what it holds while it shapes the rest, not the queue they would share."""
    link: dict[str, Any] = {"latency": latency_ms}
    if rate is not None:
        link["rate"] = rate
    flows = []
    if probe_link:
        # The server's address as the seed's number (its bytes in network order, read as a
        # little-endian integer): the seed's engine takes no other form.
        address = int.from_bytes(ipaddress.IPv4Address(SERVER_IP).packed, "little")
        match = {"ip": address, "protocol": 17,
                 "port_min": PROBE_PORT, "port_max": PROBE_PORT}  # fmt: skip
        latency = {"latency": latency_ms}
        flows.append({"label": "probe", "flow": match,
                      "link": {"ingress": latency, "egress": latency}})  # fmt: skip
    return Spec.model_validate({"default_link": {"ingress": link, "egress": link}, "flows": flows})


@dataclass
class CpuMeter:
    """CPU of the shaper's processes between `start` and `stop`, as a share of one core; with
    `profile` (linkshaper only), py-spy samples the egress worker meanwhile, without stopping
    it (`--nonblocking`), and `profile_text` is its self time per function."""

    running: Running
    profile: bool = False
    _before: float = 0.0
    _started: float = 0.0
    _spy: subprocess.Popen[bytes] | None = None
    _spy_out: Path | None = None
    percent: float = field(default=0.0, init=False)
    profile_text: str = field(default="", init=False)

    def start(self) -> None:
        if self.profile and self.running.engine is not None:
            with self.running.engine.client() as control:
                pid = control.info().worker_pids["egress"]
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            self._spy_out = Path(tempfile.mkdtemp()) / "profile.txt"
            self._spy = subprocess.Popen(
                [spy, "record", "--nonblocking", "-d", str(int(MEASURED)), "-r", "200",
                 "-f", "raw", "-o", str(self._spy_out), "-p", str(pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        self._before = sum(cpu_seconds(p) for p in self.running.processes)
        self._started = time.monotonic()

    def stop(self) -> None:
        used = sum(cpu_seconds(p) for p in self.running.processes) - self._before
        self.percent = used / (time.monotonic() - self._started) * 100.0
        if self._spy is not None and self._spy_out is not None:
            self._spy.wait(MEASURED + 30)
            self.profile_text = summarize(self._spy_out.read_text())
            shutil.rmtree(self._spy_out.parent, ignore_errors=True)


def summarize(raw: str, top: int = 10) -> str:
    """Self time per function (file and line) from py-spy's collapsed stacks."""
    counts: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if stack:
            leaf = stack.split(";")[-1]
            counts[leaf] = counts.get(leaf, 0) + int(number)
    total = sum(counts.values()) or 1
    rows = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return "\n".join(f"{n / total:6.1%}  {name.replace(str(ROOT) + '/', '')}" for name, n in rows)


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

        def measure() -> None:
            count_frames()
            meter.start()
            time.sleep(MEASURED)
            meter.stop()
            count_frames()

        try:
            time.sleep(WARMUP)
            delays = probe_delays(lab, int(MEASURED * FRAMES_PROBE_PPS), FRAMES_PROBE_PPS, measure)
        finally:
            runner.join(TCP_SECONDS + 30)
    sender = report["end"]["streams"][0]["sender"]
    if profiles is not None:
        profiles["offloads off, one TCP stream"] = meter.profile_text
    return {"cpu": meter.percent, "mbit": received_bits_per_second(report) / 1e6,
            "fps": (frames[1] - frames[0]) / MEASURED,
            "retransmits": float(sender.get("retransmits", 0)),
            "rtt_ms": sender.get("mean_rtt", 0) / 1000,
            "probe_p99": delays["delay_p99_ms"], "probe_max": delays["delay_max_ms"]}  # fmt: skip


def one_round(lab: Lab, everyone: list[Shaper]) -> dict[str, dict[str, float]]:
    """Every load with every shaper, interleaved; keys `LOAD/SHAPER`."""
    out: dict[str, dict[str, float]] = {}
    lab.up(offloads=True)
    try:
        for rate in (20, 100):
            for shaper in everyone:
                out[f"tcp{rate}/{shaper.name}"] = tcp_load(lab, shaper, rate)
        for shaper in everyone:
            out[f"probe/{shaper.name}"] = probe_alone(lab, shaper)
    finally:
        lab.down()
    lab.up(offloads=False)
    try:
        out["straight/linkshaper"] = frames_load(lab, everyone[0], PASS_THROUGH)
        for shaper in everyone:
            out[f"frames/{shaper.name}"] = frames_load(lab, shaper, both_ways(None, 10))
    finally:
        lab.down()
    return out


def profile_round(lab: Lab, shaper: Shaper) -> dict[str, str]:
    """Each load once more with py-spy on the egress worker: where its time goes."""
    profiles: dict[str, str] = {}
    lab.up(offloads=True)
    try:
        for rate in (20, 100):
            tcp_load(lab, shaper, rate, profiles)
        probe_alone(lab, shaper, profiles)
    finally:
        lab.down()
    lab.up(offloads=False)
    try:
        frames_load(lab, shaper, both_ways(None, 10), profiles)
    finally:
        lab.down()
    return profiles


def medians(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        key: {m: statistics.median(r[key][m] for r in rounds) for m in rounds[0][key]}
        for key in rounds[0]
    }


def rows(
    med: dict[str, dict[str, float]], everyone: list[Shaper]
) -> list[tuple[str, str, str, str]]:
    """The table: measure, target, each shaper's figures, and against the seed."""
    names = [s.name for s in everyone]
    seed = "rush (seed)" if "rush (seed)" in names else None
    table: list[tuple[str, str, str, str]] = []
    for rate, cap in ((20, 20), (100, 30)):
        for name in names:
            m = med[f"tcp{rate}/{name}"]
            versus = ""
            if seed and name != seed:
                versus = f"{m['cpu'] / med[f'tcp{rate}/{seed}']['cpu']:.2f} of the seed's CPU"
            queue = "" if math.isnan(m["queue_delay"]) else f", TCP queue {m['queue_delay']:.2f} ms"
            table.append((
                f"TCP both ways at 80 % of {rate} Mbit/s + {LATENCY_MS} ms each way: {name}",
                f"CPU ≤ {cap} % and ≤ the seed's; probe p99 ≤ {LATENCY_MS + 0.5} ms",
                f"CPU {m['cpu']:.1f} %, {m['up_mbit']:.1f}/{m['down_mbit']:.1f} Mbit/s, "
                f"probe p1 {m['delay_p1']:.2f} / p99 {m['delay_p99']:.2f} ms{queue}",
                versus,
            ))  # fmt: skip
    for name in names:
        m = med[f"probe/{name}"]
        inside = m["delay_p1"] >= LATENCY_MS and m["delay_p99"] <= LATENCY_MS + 0.3
        table.append((
            f"UDP 1000/s alone, {LATENCY_MS} ms: {name}",
            f"p1 ≥ {LATENCY_MS}, p99 ≤ {LATENCY_MS + 0.3} ms at CPU ≤ 10 %",
            f"CPU {m['cpu']:.1f} %, p1 {m['delay_p1']:.2f} / p99 {m['delay_p99']:.2f} ms",
            "inside" if inside and m["cpu"] <= 10 else "OUTSIDE",
        ))  # fmt: skip
    straight = med["straight/linkshaper"]
    table.append((
        "offloads off, one TCP stream, straight path: linkshaper", "(reference)",
        f"{straight['mbit']:.0f} Mbit/s, {straight['fps'] / 1e3:.1f} k frames/s, "
        f"CPU {straight['cpu']:.0f} %, TCP round trip {straight['rtt_ms']:.1f} ms, probe beside "
        f"it p99 {straight['probe_p99']:.2f} / max {straight['probe_max']:.2f} ms", "",
    ))  # fmt: skip
    for name in names:
        m = med[f"frames/{name}"]
        per = m["cpu"] / (m["fps"] / 1e4) if m["fps"] else float("nan")
        table.append((
            f"offloads off, 10 ms each way, one TCP stream: {name}",
            "≥ 75 % of the straight path",
            f"{m['mbit']:.0f} Mbit/s, {m['fps'] / 1e3:.1f} k frames/s, CPU {m['cpu']:.0f} % "
            f"({per:.1f} % per 10 k frames/s), {m['retransmits']:.0f} retransmissions, TCP round "
            f"trip {m['rtt_ms']:.1f} ms, probe beside it p99 {m['probe_p99']:.2f} / max "
            f"{m['probe_max']:.2f} ms",
            f"{m['mbit'] / straight['mbit']:.0%} of the straight path",
        ))  # fmt: skip
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--profile", action="store_true", help="then profile linkshaper's egress worker (py-spy)"
    )
    parser.add_argument(
        "--mode",
        action="append",
        help=f"linkshaper's options for one contender, again for more (default: {MODES})",
    )
    args = parser.parse_args()
    everyone = shapers(tuple(args.mode) if args.mode else MODES)
    lab = Lab("lscost")
    rounds = []
    for run in range(args.runs):
        rounds.append(one_round(lab, everyone))
        print(f"round {run + 1}: {json.dumps(rounds[-1])}", flush=True)
    print_table(rows(medians(rounds), everyone))
    if args.profile:
        print_profiles(profile_round(lab, everyone[0]), everyone[0].name)


def print_profiles(profiles: dict[str, str], name: str) -> None:
    for load, text in profiles.items():
        print(f"\n{name}, egress worker, {load}, self time (py-spy --nonblocking):\n")
        print(text)


def print_table(table: list[tuple[str, str, str, str]]) -> None:
    print("| measure | target | measured | ratio |")
    print("|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
