"""What a fate capture costs (`python -m bench.capture_cost`, and in `make bench`): one TCP
stream through the straight path (pass-through) and through the shaped 1 Gbit/s + 10 ms each
way link, each with no capture and with `linkshaper capture /dev/null` running, back to back
in one lab: throughput and the engine's CPU (all its processes, % of one core), as ratios of
capture on to off. A capture turns the straight path off (every frame's fate is needed), so
that row shows the most it can cost."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.passthrough import cpu_percent, engine_processes
from engine.kernel.processes import stop_process
from engine.lab.harness import EngineProcess, iperf3, received_bits_per_second
from engine.lab.lab import Lab
from engine.model.spec import PASS_THROUGH, Spec

SECONDS = 5
SHAPED = Spec.model_validate({"ingress": {"rate": "1gbit", "latency": "10ms"},
                              "egress": {"rate": "1gbit", "latency": "10ms"}})  # fmt: skip
CASES = (("straight path (pass-through)", PASS_THROUGH), ("shaped 1 Gbit/s + 10 ms", SHAPED))


def measure(lab: Lab, spec: Spec, capture: bool) -> tuple[float, float]:
    """Throughput (bit/s) of one TCP stream and the engine's CPU meanwhile."""
    with tempfile.TemporaryDirectory() as workdir:
        engine = EngineProcess(lab, Path(workdir), spec)
        capturing: subprocess.Popen[bytes] | None = None
        try:
            engine.wait_ready()
            if capture:
                capturing = subprocess.Popen(
                    [sys.executable, "-m", "engine.cli.main", "capture", "/dev/null",
                     "--control", engine.control],
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(1.0)
            processes = engine_processes(engine)
            cpu: list[float] = []
            meter = threading.Thread(
                target=lambda: cpu.append(cpu_percent(processes, SECONDS - 1.5))
            )
            timer = threading.Timer(1.0, meter.start)  # past iperf3's ramp-up
            timer.start()
            throughput = received_bits_per_second(iperf3(lab, seconds=SECONDS))
            timer.join()
            meter.join()
            return throughput, cpu[0] if cpu else 0.0
        finally:
            if capturing is not None:
                stop_process(capturing)
            engine.close()


def one_round(lab: Lab) -> dict[str, float]:
    lab.up()
    try:
        result: dict[str, float] = {}
        for name, spec in CASES:
            for capture in (False, True):
                tput, cpu = measure(lab, spec, capture)
                key = f"{name}|{'on' if capture else 'off'}"
                result[f"{key}|tput"], result[f"{key}|cpu"] = tput, cpu
        return result
    finally:
        lab.down()


def rows(med: dict[str, float]) -> list[tuple[str, str, str, str]]:
    table = []
    for name, _ in CASES:
        off_t, on_t = med[f"{name}|off|tput"], med[f"{name}|on|tput"]
        off_c, on_c = med[f"{name}|off|cpu"], med[f"{name}|on|cpu"]
        table.append((f"TCP, {name}: throughput, capture off / on", f"{off_t / 1e6:.0f} Mbit/s",
                      f"{on_t / 1e6:.0f} Mbit/s", f"{on_t / off_t:.0%}"))  # fmt: skip
        table.append((f"TCP, {name}: engine CPU, capture off / on", f"{off_c:.0f} %",
                      f"{on_c:.0f} %", f"{on_c / off_c:.2f}x" if off_c else ""))  # fmt: skip
    return table


def medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    lab = Lab("lsbench")
    rounds = [one_round(lab) for _ in range(args.runs)]
    print("| measure | capture off | capture on | on / off |")
    print("|---|---|---|---|")
    for row in rows(medians(rounds)):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
