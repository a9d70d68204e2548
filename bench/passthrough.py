"""Pass-through benchmark: linkshaper against a Linux bridge, same lab, same run.

For each of `--runs` rounds it measures, first with a bridge in the box and then with the
engine (no impairment): one TCP stream's throughput (iperf3), the ping RTT (median of 200),
and the engine's CPU when idle and under load (psutil, all engine processes summed). It prints
a table with the medians and the ratios. Not a test: numbers on a shared machine are noisy,
which is why both sides are measured back to back.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import psutil

from engine.lab.harness import EngineProcess, iperf3, ping_rtts, received_bits_per_second
from engine.lab.lab import Lab
from engine.model.spec import PASS_THROUGH


def engine_processes(engine: EngineProcess) -> list[psutil.Process]:
    with engine.client() as client:
        info = client.info()
    return [psutil.Process(pid) for pid in (info.supervisor_pid, *info.worker_pids.values())]


def cpu_seconds(process: psutil.Process) -> float:
    """CPU time of all the process's threads, in the scheduler's own nanoseconds
    (/proc/PID/task/*/schedstat): `cpu_times` counts 10 ms ticks, so over a few seconds of idle
    one tick more or less of three processes would move the reading by 0.33 %."""
    nanoseconds = 0
    for task in Path(f"/proc/{process.pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            nanoseconds += int((task / "schedstat").read_text().split()[0])
    return nanoseconds / 1e9


def cpu_percent(processes: list[psutil.Process], seconds: float) -> float:
    before = sum(cpu_seconds(p) for p in processes)
    time.sleep(seconds)
    return (sum(cpu_seconds(p) for p in processes) - before) / seconds * 100.0


def measure_round(lab: Lab, seconds: int, offloads: bool) -> dict[str, float]:
    lab.up(offloads=offloads)
    try:
        lab.bridge(True)
        time.sleep(1.0)
        bridge_tput = received_bits_per_second(iperf3(lab, seconds=seconds))
        bridge_rtt = statistics.median(ping_rtts(lab, count=200, interval=0.01))
        lab.bridge(False)
        with tempfile.TemporaryDirectory() as workdir:
            engine = EngineProcess(lab, Path(workdir), PASS_THROUGH)
            try:
                engine.wait_ready()
                processes = engine_processes(engine)
                idle_cpu = cpu_percent(processes, 3.0)
                cpu_before = sum(cpu_seconds(p) for p in processes)
                started = time.monotonic()
                engine_tput = received_bits_per_second(iperf3(lab, seconds=seconds))
                elapsed = time.monotonic() - started
                used = sum(cpu_seconds(p) for p in processes) - cpu_before
                load_cpu = used / elapsed * 100.0
                engine_rtt = statistics.median(ping_rtts(lab, count=200, interval=0.01))
            finally:
                engine.close()
    finally:
        lab.down()
    return {
        "bridge_gbit": bridge_tput / 1e9,
        "engine_gbit": engine_tput / 1e9,
        "bridge_rtt_ms": bridge_rtt,
        "engine_rtt_ms": engine_rtt,
        "idle_cpu": idle_cpu,
        "load_cpu": load_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--offloads-off", action="store_true")
    args = parser.parse_args()
    lab = Lab("lsbench")
    rounds = [measure_round(lab, args.seconds, not args.offloads_off) for _ in range(args.runs)]
    med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    offloads = "off" if args.offloads_off else "on"
    print(
        f"\npass-through, {date.today()}, {platform.node()}, {psutil.cpu_count()} cores, "
        f"kernel {platform.release()}, offloads {offloads}, median of {args.runs} runs"
    )
    print("| metric | Linux bridge | linkshaper | ratio |")
    print("|---|---|---|---|")
    print(
        f"| TCP, one stream | {med['bridge_gbit']:.2f} Gbit/s | {med['engine_gbit']:.2f} Gbit/s "
        f"| {med['engine_gbit'] / med['bridge_gbit']:.0%} |"
    )
    print(
        f"| ping RTT (median of 200) | {med['bridge_rtt_ms']:.3f} ms | "
        f"{med['engine_rtt_ms']:.3f} ms | +{med['engine_rtt_ms'] - med['bridge_rtt_ms']:.3f} ms |"
    )
    print(f"| engine CPU, idle | - | {med['idle_cpu']:.1f} % of a core | - |")
    print(f"| engine CPU, under TCP load | - | {med['load_cpu']:.0f} % of a core | - |")


if __name__ == "__main__":
    main()
