"""What a queue discipline costs (`python -m bench.aqm_cost`, and in `make bench`): one cubic
TCP stream through 1 Gbit/s + 10 ms each way with tail drop, CoDel and FQ-CoDel, back to back
in one lab: throughput, the engine's CPU (all its processes, % of one core) and a ping's RTT
under that load (median of the pings during the stream), each as a ratio to tail drop. An AQM
link cuts super-frames into wire packets (it decides packet by packet), so this is also what
that costs at speed."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

from bench.passthrough import cpu_percent, engine_processes
from engine.lab.harness import (
    EngineProcess,
    iperf3,
    ping_rtts,
    received_bits_per_second,
)
from engine.lab.lab import Lab
from engine.model.spec import Spec

SECONDS = 8
DISCIPLINES = ("tail_drop", "codel", "fq_codel")


def spec_for(discipline: str) -> Spec:
    link = {"rate": "1gbit", "latency": "10ms", "queue": {"discipline": discipline}}
    return Spec.model_validate({"ingress": link, "egress": link})


def measure(lab: Lab, discipline: str) -> dict[str, float]:
    """Throughput (bit/s), engine CPU and the median ping RTT (ms) under one stream."""
    with tempfile.TemporaryDirectory() as workdir:
        engine = EngineProcess(lab, Path(workdir), spec_for(discipline))
        try:
            engine.wait_ready()
            processes = engine_processes(engine)
            report: dict[str, Any] = {}
            stream = threading.Thread(
                target=lambda: report.update(iperf3(lab, seconds=SECONDS, extra=("-C", "cubic")))
            )
            stream.start()
            cpu: list[float] = []
            meter = threading.Timer(1.5, lambda: cpu.append(cpu_percent(processes, 4.0)))
            meter.start()
            threading.Event().wait(2.0)
            rtts = ping_rtts(lab, count=40, interval=0.1)
            stream.join()
            meter.join()
            return {
                "tput": received_bits_per_second(report) if report else 0.0,
                "cpu": cpu[0] if cpu else 0.0,
                "rtt": statistics.median(rtts) if rtts else 0.0,
            }
        finally:
            engine.close()


def one_round(lab: Lab) -> dict[str, float]:
    lab.up()
    try:
        result: dict[str, float] = {}
        for discipline in DISCIPLINES:
            for key, value in measure(lab, discipline).items():
                result[f"{discipline}|{key}"] = value
        return result
    finally:
        lab.down()


def medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def rows(med: dict[str, float]) -> list[tuple[str, str, str, str]]:
    base_t, base_c, base_r = med["tail_drop|tput"], med["tail_drop|cpu"], med["tail_drop|rtt"]
    table = []
    for discipline in DISCIPLINES[1:]:
        t, c, r = med[f"{discipline}|tput"], med[f"{discipline}|cpu"], med[f"{discipline}|rtt"]
        table.append((f"1 Gbit/s + 10 ms, one cubic stream, {discipline}: throughput",
                      f"{base_t / 1e6:.0f} Mbit/s", f"{t / 1e6:.0f} Mbit/s",
                      f"{t / base_t:.0%}" if base_t else ""))  # fmt: skip
        table.append((f"the same, {discipline}: engine CPU", f"{base_c:.0f} %", f"{c:.0f} %",
                      f"{c / base_c:.2f}x" if base_c else ""))  # fmt: skip
        table.append((f"the same, {discipline}: ping RTT under the load (median)",
                      f"{base_r:.1f} ms", f"{r:.1f} ms", f"{r - base_r:+.1f} ms"))  # fmt: skip
    return table


def print_table(rounds: list[dict[str, float]]) -> None:
    print("\nwhat a queue discipline costs (against tail drop, in the same run):\n")
    print("| measure | tail drop | with the AQM | ratio |")
    print("|---|---|---|---|")
    for row in rows(medians(rounds)):
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    lab = Lab("lsbench")
    print_table([one_round(lab) for _ in range(args.runs)])


if __name__ == "__main__":
    main()
