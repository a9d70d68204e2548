"""What the TUI itself costs while a person uses it (issue 35, "Done when"): `python -m
bench.tui_cost [--minutes N]` or `make bench-tui`.

The demo lab runs (an engine shaping iperf3 both ways, namespaces under `--prefix`); the real
`tui --control` attaches to it in a real terminal (a private tmux server, 200x60,
`TERM=xterm-256color`, so writing to the terminal is counted). Measured, beside thresholds:

- steady CPU: the TUI process over STEADY seconds untouched (% of one core);
- a burst of 120 keys sent at once (`j`/`k` pairs, then `w j l`): the CPU seconds it cost
  (comparable under any load, unlike the wall time), how long until the TUI is back at
  ≤ 10 % (the start of the first WINDOW-second stretch, on a grid from the send, that
  costs ≤ 10 %: "back by 1.0 s" when the stretch from 1.0 to 1.5 s is), and whether a key
  was lost (the `l` at its end must step the upload's loss, nothing else: a lost or late key
  changes another field);
- RSS over `--minutes` of scripted use (moves, steps and their undo, the packets view, the
  history, the help, the advanced settings, a typed value), from the end of the first minute.

CPU is the scheduler's nanoseconds of every thread (`bench.passthrough.cpu_seconds`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import psutil

from bench.passthrough import cpu_seconds
from engine.lab.demo import DemoLab
from engine.lab.lab import Lab
from engine.model.spec import LinkPair
from engine.protocol.client import ControlClient

ROOT = Path(__file__).resolve().parent.parent
SIZE = (200, 60)
STEADY = 20.0
WINDOW = 0.5
CPU_LIMIT = 10.0  # % of one core
RECOVERY_LIMIT = 1.0  # seconds after a burst
RSS_GROWTH_LIMIT = 20.0  # MB over the session
#: One round of scripted use: (keys sent at once, seconds to wait after them).
ROUND: tuple[tuple[tuple[str, ...], float], ...] = (
    (("j", "j", "j", "k", "k", "k"), 1.0),
    (("w", "l", "h", "w"), 1.0),
    (("v",), 4.0),
    (("Escape",), 1.0),
    (("g",), 3.0),
    (("Escape",), 1.0),
    (("?",), 2.0),
    (("Escape",), 1.0),
    (("a",), 2.0),
    (("a",), 1.0),
    (("j", "j", "j", "Enter"), 1.0),  # Latency: typed again as it is
    (("C-u", "20ms", "Enter"), 2.0),
)


class Terminal:
    """A private tmux server running the TUI; killed at the end whatever happened."""

    def __init__(self, control: str) -> None:
        self.server = f"h21k-bench-{os.getpid()}"
        command = (
            f"cd {ROOT} && TERM=xterm-256color exec {sys.executable} -m shaper_tui "
            f"--control {control} --record-dir /tmp/{self.server}"
        )
        self("new-session", "-d", "-s", "tui", "-x", str(SIZE[0]), "-y", str(SIZE[1]), command)
        pid = int(self("display-message", "-p", "-t", "tui", "#{pane_pid}"))
        self.process = psutil.Process(pid)

    def __call__(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-L", self.server, *args], capture_output=True,
                                text=True, check=False)  # fmt: skip
        if result.returncode and args[0] != "kill-server":
            raise RuntimeError(f"tmux {args[0]}: {result.stderr.strip()}")
        return result.stdout

    def keys(self, *keys: str) -> None:
        """All in one write to the terminal, as a burst reaches it."""
        self("send-keys", "-t", "tui", *keys)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "tui")

    def close(self) -> None:
        self("kill-server")


def cpu_over(process: psutil.Process, seconds: float) -> float:
    before = cpu_seconds(process)
    time.sleep(seconds)
    return (cpu_seconds(process) - before) / seconds * 100.0


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {what} did not happen within {timeout:.0f} s")
        time.sleep(0.1)


def changed_fields(before: LinkPair, after: LinkPair) -> list[str]:
    """`egress.loss 0 -> 0.0001`, ...: what the burst changed."""
    old, new = before.model_dump(), after.model_dump()
    return [
        f"{direction}.{name} {old[direction][name]} -> {new[direction][name]}"
        for direction in ("ingress", "egress")
        for name in old[direction]
        if old[direction][name] != new[direction][name]
    ]


class Burst(NamedTuple):
    """What the burst cost: `recovered` seconds until a WINDOW costs ≤ CPU_LIMIT, `cpu` the
    CPU seconds the TUI spent from the send to then, what the keys `changed` (`egress.loss`
    alone if none was lost), and each window's CPU (%)."""

    recovered: float
    cpu: float
    changed: list[str]
    windows: list[float]


def burst(terminal: Terminal, control: str) -> Burst:
    """The burst sent at once, and what it cost."""
    with ControlClient(control) as client:
        before = client.get_spec().default_link
    keys = ["j", "k"] * 60 + ["w", "j", "l"]  # back to Download Rate, then Upload Loss +1 step
    start = time.monotonic()
    used = first = cpu_seconds(terminal.process)
    terminal.keys(*keys)
    windows: list[float] = []
    recovered = float("inf")
    for index in range(1, int(15 / WINDOW) + 1):  # windows on a fixed grid from the send
        time.sleep(max(0.0, start + index * WINDOW - time.monotonic()))
        now = cpu_seconds(terminal.process)
        windows.append((now - used) / WINDOW * 100.0)
        used = now
        if windows[-1] <= CPU_LIMIT:
            recovered = (index - 1) * WINDOW  # back at steady from this window's start
            break
    spent = used - first
    time.sleep(1.0)
    with ControlClient(control) as client:
        after = client.get_spec().default_link
        changed = changed_fields(before, after)
        client.set_spec(client.get_spec().model_copy(update={"default_link": before}), "bench")
    terminal.keys("w", "k")  # focus back on Download Rate, where the rounds start
    return Burst(recovered, spent, changed, windows)


def session(terminal: Terminal, minutes: float) -> list[tuple[float, float]]:
    """(minute, RSS MB) sampled after each round of scripted use, for `minutes`."""
    start = time.monotonic()
    samples: list[tuple[float, float]] = []
    while (elapsed := time.monotonic() - start) < minutes * 60:
        for keys, pause in ROUND:
            terminal.keys(*keys)
            time.sleep(pause)
        samples.append((elapsed / 60, terminal.process.memory_info().rss / 1e6))
    return samples


def measure(prefix: str, minutes: float) -> list[tuple[str, str, str, str]]:
    """The table's rows: what, threshold, measured, verdict."""
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed for the TUI's cost (make install)")
    rows: list[tuple[str, str, str, str]] = []
    seconds = 120 + STEADY + minutes * 60
    with DemoLab(Lab(prefix), seconds=seconds) as demo:
        terminal = Terminal(demo.control)
        try:
            wait_for(lambda: "attached" in terminal.screen(), 30, "the TUI attaching")
            time.sleep(5)
            steady = cpu_over(terminal.process, STEADY)
            rows.append((f"steady CPU at {SIZE[0]}x{SIZE[1]} over {STEADY:.0f} s",
                         f"≤ {CPU_LIMIT:.0f} %", f"{steady:.1f} %",
                         verdict(steady <= CPU_LIMIT)))  # fmt: skip
            rows.extend(burst_rows(burst(terminal, demo.control), steady))
            rss = session(terminal, minutes)
            rows.extend(rss_rows(rss, minutes))
        finally:
            terminal.keys("Escape", "q")
            time.sleep(1)
            terminal.close()
    return rows


def burst_rows(cost: Burst, steady: float) -> list[tuple[str, str, str, str]]:
    """The burst's rows; its CPU seconds (beside the steady share of the same time) do not
    grow with the machine's load, as the recovery's wall time does."""
    kept = len(cost.changed) == 1 and cost.changed[0].startswith("egress.loss 0.0 ->")
    series = " ".join(f"{w:.0f}" for w in cost.windows)
    until = cost.recovered + WINDOW
    return [("back to steady after 120 keys (start of the first quiet window)",
             f"≤ {RECOVERY_LIMIT:.0f} s",
             f"{cost.recovered:.2f} s (CPU per {WINDOW} s: {series} %)",
             verdict(cost.recovered <= RECOVERY_LIMIT)),
            ("CPU seconds the TUI spent on the burst, above its steady share of that time",
             "-", f"{cost.cpu - steady / 100 * until:.3f} s ({cost.cpu:.3f} s from the send "
             f"to the end of the quiet window, {until:.1f} s; steady {steady / 100 * until:.3f} s)",
             "-"),
            ("keys lost in the burst (`w j l` at its end steps the upload's loss)",
             "none", "none" if kept else f"some: changed {cost.changed or 'nothing'}",
             verdict(kept))]  # fmt: skip


def rss_rows(rss: list[tuple[float, float]], minutes: float) -> list[tuple[str, str, str, str]]:
    settled = [mb for minute, mb in rss if minute >= 1.0] or [mb for _, mb in rss]
    growth = settled[-1] - settled[0]
    trace = ", ".join(f"min {m:.0f}: {mb:.0f}" for m, mb in rss[:: max(1, len(rss) // 10)])
    return [(f"RSS over {minutes:g} min of use (from minute 1)",
             f"≤ +{RSS_GROWTH_LIMIT:.0f} MB",
             f"{settled[0]:.0f} → {settled[-1]:.0f} MB ({growth:+.1f}, peak {max(settled):.0f}; "
             f"{trace})", verdict(growth <= RSS_GROWTH_LIMIT))]  # fmt: skip


def verdict(inside: bool) -> str:
    return "inside" if inside else "OUTSIDE"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0,
                        help="minutes of scripted use for the RSS (default 30)")  # fmt: skip
    parser.add_argument("--prefix", default="lstui", help="the demo lab's namespace prefix")
    args = parser.parse_args()
    rows = measure(args.prefix, args.minutes)
    print("| measure | threshold | measured | verdict |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
