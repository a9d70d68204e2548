"""Timing under contention (performance issue, item 5): a UDP probe at 1000 packets/s through
20 ms each way with two busy processes (endless shell loops) in the client's namespace beside
it, linkshaper by default and with `--realtime`, interleaved in each round: the probe's
one-way p99 above the set delay. (The issue's reference, a bare Linux bridge with netem, is
not part of this yet.)

Alone: `python -m bench.realtime --runs 3`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import time
from collections.abc import Iterator

from bench.shaped_loads import LATENCY_MS, probe_delays, resolve_server
from bench.shapers import Shaper, both_ways
from engine.lab.lab import Lab

#: Busy processes beside the engine (the issue's "two busy processes").
BUSY = 2
CONTENDERS = (Shaper("linkshaper"), Shaper("linkshaper --realtime", ("--realtime",)))


@contextlib.contextmanager
def busy(lab: Lab) -> Iterator[None]:
    """BUSY endless loops in the client's namespace for the block, killed after it."""
    loops = [
        subprocess.Popen(lab.in_ns("client", "sh", "-c", "while :; do :; done"))
        for _ in range(BUSY)
    ]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait(10)


def contended_probe(lab: Lab, shaper: Shaper) -> dict[str, float]:
    """The probe's one-way delay (ms) with the busy loops running (started once the engine
    is up: on a loaded machine it may not start within its time beside them)."""
    with shaper.running(lab, both_ways(None, LATENCY_MS)):
        resolve_server(lab)
        with busy(lab):
            delays = probe_delays(lab, 1000 * 7, 1000, lambda: time.sleep(7.0))
    return {"delay_p1": delays["delay_p1_ms"], "delay_p99": delays["delay_p99_ms"]}


def one_round(lab: Lab) -> dict[str, dict[str, float]]:
    lab.up(offloads=True)
    try:
        return {shaper.name: contended_probe(lab, shaper) for shaper in CONTENDERS}
    finally:
        lab.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prefix", default="lsrt", help="the lab's namespace prefix")
    args = parser.parse_args()
    lab = Lab(args.prefix)
    rounds = []
    for run in range(args.runs):
        rounds.append(one_round(lab))
        print(f"round {run + 1}: {json.dumps(rounds[-1])}", flush=True)
    print_table(rounds)


def print_table(rounds: list[dict[str, dict[str, float]]]) -> None:
    print("| contender | probe p99 above the set delay, per round | median |")
    print("|---|---|---|")
    for shaper in CONTENDERS:
        # A p99 of 0: no datagram came through in the round (the probe reports none).
        p99s = [r[shaper.name]["delay_p99"] for r in rounds]
        above = [p - LATENCY_MS for p in p99s if p > 0]
        each = ", ".join(f"{p - LATENCY_MS:+.2f}" if p > 0 else "none received" for p in p99s)
        median = f"{statistics.median(above):+.2f} ms" if above else "-"
        print(f"| {shaper.name} | {each} ms | {median} |")


if __name__ == "__main__":
    main()
