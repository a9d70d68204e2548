"""What the TUI itself costs while it shows a live engine (the TUI issue: at most 10 % of a
core at 120x40), beside the engine's own CPU in the same stretch.

The demo lab runs (an engine shaping iperf3 both ways); `tui --control` attaches to it in a
real terminal, a private tmux server at each size, with `TERM=xterm-256color`, so that the
cost of writing to a terminal is counted too. CPU is the scheduler's nanoseconds of every
thread of the process (`bench.passthrough.cpu_seconds`) over MEASURED seconds, after WARMUP.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from bench.passthrough import cpu_seconds
from engine.lab.demo import DemoLab
from engine.lab.lab import Lab
from engine.protocol.client import ControlClient

ROOT = Path(__file__).resolve().parent.parent
SIZES = ((80, 24), (120, 40), (200, 60))
WARMUP = 3.0
MEASURED = 10.0
TARGET_SIZE = (120, 40)
TARGET_PERCENT = 10.0


def _tmux(server: str, *args: str) -> str:
    result = subprocess.run(["tmux", "-L", server, *args], capture_output=True, text=True)
    if result.returncode and args[0] != "kill-server":
        raise RuntimeError(f"tmux {args[0]}: {result.stderr.strip()}")
    return result.stdout


def measure(prefix: str = "lstui") -> dict[tuple[int, int], tuple[float, float]]:
    """(width, height) → (TUI CPU %, engine CPU %) of one core, at each of SIZES."""
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed for the TUI's cost (make install)")
    out: dict[tuple[int, int], tuple[float, float]] = {}
    with DemoLab(Lab(prefix), seconds=WARMUP * 3 + (WARMUP + MEASURED) * len(SIZES)) as demo:
        with ControlClient(demo.control) as control:
            info = control.info()
        engine = [psutil.Process(p) for p in (info.supervisor_pid, *info.worker_pids.values())]
        for width, height in SIZES:
            server = f"linkshaper-bench-{os.getpid()}-{width}x{height}"  # one each: a server
            # killed a moment before may still hold its socket
            command = (
                f"cd {ROOT} && TERM=xterm-256color exec {sys.executable} -m shaper_tui "
                f"--control {demo.control}"
            )
            try:
                _tmux(server, "new-session", "-d", "-s", "tui", "-x", str(width),
                      "-y", str(height), command)  # fmt: skip
                time.sleep(WARMUP)
                pid = int(_tmux(server, "display-message", "-p", "-t", "tui", "#{pane_pid}"))
                tui = psutil.Process(pid)
                before = cpu_seconds(tui), sum(cpu_seconds(p) for p in engine)
                time.sleep(MEASURED)
                after = cpu_seconds(tui), sum(cpu_seconds(p) for p in engine)
                out[(width, height)] = (
                    (after[0] - before[0]) / MEASURED * 100.0,
                    (after[1] - before[1]) / MEASURED * 100.0,
                )
            finally:
                _tmux(server, "kill-server")
    return out


def rows(figures: dict[tuple[int, int], tuple[float, float]]) -> list[tuple[str, str, str, str]]:
    table = []
    for (width, height), (tui, engine) in figures.items():
        target = f"≤ {TARGET_PERCENT:.0f} % of a core" if (width, height) == TARGET_SIZE else ""
        verdict = ""
        if target:
            verdict = "inside" if tui <= TARGET_PERCENT else "OUTSIDE"
        table.append((f"TUI CPU, live demo, {width}x{height}", target,
                      f"{tui:.1f} % (the engine beside it: {engine:.0f} %)", verdict))  # fmt: skip
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    print("| measure | target | measured | ratio |")
    print("|---|---|---|---|")
    for row in rows(measure()):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
