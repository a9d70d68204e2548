"""Pass-through benchmark: linkshaper against a Linux bridge, same lab, same run.

For each of `--runs` rounds it measures, first with a bridge in the box, then with the
engine (no impairment) with its kernel fast path (tc's redirect; measured once it is on),
then with `--no-fast-path`: one TCP stream's throughput (iperf3), the ping RTT (median of 200),
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


def wait_for_fast_path(engine: EngineProcess, seconds: float = 15.0) -> None:
    """Until the kernel forwards both directions (a second after the engine starts)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with engine.client() as client:
            stats = client.stats()
        if all(d is not None and d.fast_path for d in (stats.ingress, stats.egress)):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the fast path did not start within {seconds} s")


def measure_engine(lab: Lab, seconds: int, fast_path: bool) -> dict[str, float]:
    """One engine's figures: with the kernel fast path (waited for) or `--no-fast-path`."""
    extra = () if fast_path else ("--no-fast-path",)
    with tempfile.TemporaryDirectory() as workdir:
        engine = EngineProcess(lab, Path(workdir), PASS_THROUGH, extra=extra)
        try:
            engine.wait_ready()
            if fast_path:
                wait_for_fast_path(engine)
            processes = engine_processes(engine)
            idle_cpu = cpu_percent(processes, 3.0)
            cpu_before = sum(cpu_seconds(p) for p in processes)
            started = time.monotonic()
            tput = received_bits_per_second(iperf3(lab, seconds=seconds))
            elapsed = time.monotonic() - started
            used = sum(cpu_seconds(p) for p in processes) - cpu_before
            rtt = statistics.median(ping_rtts(lab, count=200, interval=0.01))
        finally:
            engine.close()
    return {"gbit": tput / 1e9, "rtt_ms": rtt, "idle_cpu": idle_cpu,
            "load_cpu": used / elapsed * 100.0}  # fmt: skip


def measure_round(lab: Lab, seconds: int, offloads: bool) -> dict[str, float]:
    """The bridge, the engine with its fast path, and the engine without, back to back."""
    lab.up(offloads=offloads)
    try:
        lab.bridge(True)
        time.sleep(1.0)
        bridge_tput = received_bits_per_second(iperf3(lab, seconds=seconds))
        bridge_rtt = statistics.median(ping_rtts(lab, count=200, interval=0.01))
        lab.bridge(False)
        fast = measure_engine(lab, seconds, fast_path=True)
        slow = measure_engine(lab, seconds, fast_path=False)
    finally:
        lab.down()
    figures = {"bridge_gbit": bridge_tput / 1e9, "bridge_rtt_ms": bridge_rtt}
    figures.update({f"fast_{key}": value for key, value in fast.items()})
    figures.update({f"engine_{key}": value for key, value in slow.items()})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--offloads-off", action="store_true")
    parser.add_argument("--prefix", default="lsbench", help="the lab's namespace prefix")
    args = parser.parse_args()
    lab = Lab(args.prefix)
    rounds = [measure_round(lab, args.seconds, not args.offloads_off) for _ in range(args.runs)]
    med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    offloads = "off" if args.offloads_off else "on"
    print(
        f"\npass-through, {date.today()}, {platform.node()}, {psutil.cpu_count()} cores, "
        f"kernel {platform.release()}, offloads {offloads}, median of {args.runs} runs"
    )
    print("| metric | Linux bridge | linkshaper, fast path | ratio | --no-fast-path | ratio |")
    print("|---|---|---|---|---|---|")
    bridge = med["bridge_gbit"]
    print(
        f"| TCP, one stream | {bridge:.2f} Gbit/s | {med['fast_gbit']:.2f} Gbit/s "
        f"| {med['fast_gbit'] / bridge:.0%} | {med['engine_gbit']:.2f} Gbit/s "
        f"| {med['engine_gbit'] / bridge:.0%} |"
    )
    rtt = med["bridge_rtt_ms"]
    print(
        f"| ping RTT (median of 200) | {rtt:.3f} ms | {med['fast_rtt_ms']:.3f} ms "
        f"| +{med['fast_rtt_ms'] - rtt:.3f} ms | {med['engine_rtt_ms']:.3f} ms "
        f"| +{med['engine_rtt_ms'] - rtt:.3f} ms |"
    )
    print(f"| engine CPU, idle | - | {med['fast_idle_cpu']:.1f} % of a core | - "
          f"| {med['engine_idle_cpu']:.1f} % of a core | - |")  # fmt: skip
    print(f"| engine CPU, under TCP load | - | {med['fast_load_cpu']:.1f} % of a core | - "
          f"| {med['engine_load_cpu']:.0f} % of a core | - |")  # fmt: skip


if __name__ == "__main__":
    main()
