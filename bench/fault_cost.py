"""What a link's connection faults cost per packet (`python -m bench.fault_cost`, in `make
bench`): one direction's pipeline driven in virtual time (no socket, no clock in its path), CPU
nanoseconds per frame (the process's CPU time, which other load on the machine stretches less
than wall time), medians of `--runs` rounds, the variants of a round interleaved, the order
turned each round. Frames are 200-byte UDP datagrams, 100,000 a second of virtual time.

1. A link of 1 ms with a `blackhole` whose trigger is far away (every packet passes, but each
   is counted to its connection in the link's table and checked against the trigger), its
   frames from 1 connection against frames cycling through 10,000 (distinct 5-tuples, each
   seen every 10,000 frames): the bound is a ratio of at most 1.2.
2. The same link and frames with no fault: what 10,000 connections cost the pipeline with no
   table at all (far ends are counted as frames leave a link, summed by flow), and so which
   part of the growth in 1. is the fault's.
3. With `--before REV`, no fault and no seed, through the same 1 ms link and through a
   pass-through link, from 1 connection and from 10,000, in this tree against the engine of
   `REV` (the commit before faults existed), each measured in a process of its own,
   interleaved: the path with no fault is meant to cost what it did.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from engine.core.frames import PLAIN_VNET_HDR
from engine.core.pipeline import DirectionPipeline
from engine.model.spec import Spec

#: Rounds by default (each variant once a round).
RUNS = 7
#: Frames timed per measurement, after one untimed pass through the frames (the table filled).
FRAMES = 60_000
CONNECTIONS = 10_000
#: Virtual time between frames: 100,000 frames a second.
GAP = 1e-5
#: A trigger no frame of the bench reaches: every packet is counted and checked, and passes.
FAR_BLACKHOLE = {"after_bytes": 1 << 50, "after_s": 7 * 24 * 3600.0}
FAULT = {"latency": 1, "blackhole": FAR_BLACKHOLE}
NO_FAULT = {"latency": 1}
#: Each variant: its link (one direction's), and how many connections its frames cycle through.
VARIANTS: dict[str, tuple[dict[str, Any], int]] = {
    "fault, 1 connection": (FAULT, 1),
    "fault, 10,000 connections": (FAULT, CONNECTIONS),
    "no fault, 1 connection": (NO_FAULT, 1),
    "no fault, 10,000 connections": (NO_FAULT, CONNECTIONS),
}
#: Compared with an earlier tree: no fault, no seed, 1 connection and 10,000.
EARLIER: dict[str, dict[str, Any]] = {"1 ms": NO_FAULT, "pass-through": {}}
HERE = Path(__file__).resolve().parent.parent
#: A process of its own with the engine of another tree first on the path (see `before`).
CHILD = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from bench.fault_cost import CONNECTIONS, EARLIER, batch, cost
out = {}
for count in (1, CONNECTIONS):
    frames = batch(count)
    for name, link in EARLIER.items():
        out[f"{name}, {count:,} connection{'s' if count > 1 else ''}"] = cost(link, frames)
print(json.dumps(out))
"""


def batch(connections: int) -> list[bytes]:
    """10,000 distinct 200-byte UDP frames (a number in each payload) from `connections`
    connections in turn (the client's port tells them apart)."""
    head = bytes(Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=0, dport=5001,
                                                                        chksum=0))  # fmt: skip
    padding = bytes(200 - len(head) - 4)
    port = 14 + 20  # the UDP header's offset in the Ethernet frame
    frames = []
    for i in range(CONNECTIONS):
        frame = bytearray(head + padding + i.to_bytes(4, "big"))
        frame[port : port + 2] = (1024 + i % connections).to_bytes(2, "big")
        frames.append(PLAIN_VNET_HDR + bytes(frame))
    return frames


def cost(link: dict[str, Any], frames: list[bytes]) -> float:
    """CPU ns per frame through a fresh pipeline with `link` each way, releases included,
    after one untimed pass through `frames` (every connection seen once)."""
    pipeline = DirectionPipeline(Spec.model_validate({"egress": link}), "egress", 0.0, seed=1)
    count = len(frames)
    for index, frame in enumerate(frames):
        pipeline.forward(frame, index * GAP)
        if index % 64 == 0:
            pipeline.release(index * GAP)
    gc.collect()  # each measurement starts with the same garbage: none
    start = time.process_time_ns()
    now = 0.0
    for index in range(count, count + FRAMES):
        now = index * GAP
        pipeline.forward(frames[index % count], now)
        if index % 64 == 0:
            pipeline.release(now)
    pipeline.release(now + 1.0)
    return (time.process_time_ns() - start) / FRAMES


def measure(runs: int) -> dict[str, list[float]]:
    """Every variant `runs` times, interleaved, the order turned each round."""
    batches = {count: batch(count) for count in {c for _, c in VARIANTS.values()}}
    names = list(VARIANTS)
    rounds: dict[str, list[float]] = {name: [] for name in names}
    for run in range(runs):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            link, connections = VARIANTS[name]
            rounds[name].append(cost(link, batches[connections]))
    return rounds


def before(revision: str, runs: int) -> dict[str, list[float]]:
    """`EARLIER`'s links with this tree's engine and with `revision`'s, each round a process
    for each, interleaved; keys `LINK, TREE`."""
    archive = subprocess.run(["git", "-C", str(HERE), "archive", revision, "engine"],
                             check=True, capture_output=True).stdout  # fmt: skip
    rounds: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as old:
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        trees = {revision: old, "now": str(HERE)}
        for run in range(runs):
            for name in list(trees) if run % 2 == 0 else list(trees)[::-1]:
                done = subprocess.run([sys.executable, "-c", CHILD, trees[name], str(HERE)],
                                      cwd=trees[name], check=True, capture_output=True,
                                      text=True, timeout=300)  # fmt: skip
                for link, value in json.loads(done.stdout).items():
                    rounds.setdefault(f"no fault, {link}, {name}", []).append(value)
    return rounds


#: The ratios the bounds are about: words, numerator, denominator (variants' names).
RATIOS = (
    ("fault: 10,000 connections / 1 (bound: at most 1.2)", "fault, 10,000 connections",
     "fault, 1 connection"),
    ("no fault: 10,000 connections / 1 (the pipeline's own growth)",
     "no fault, 10,000 connections", "no fault, 1 connection"),
    ("fault / no fault, 1 connection", "fault, 1 connection", "no fault, 1 connection"),
    ("fault / no fault, 10,000 connections", "fault, 10,000 connections",
     "no fault, 10,000 connections"),
)  # fmt: skip


def print_table(rounds: dict[str, list[float]], revision: str | None = None) -> None:
    """Medians and the ratios the bounds are about, with the load beside them."""
    med = {name: statistics.median(values) for name, values in rounds.items()}
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nwhat a connection fault costs per packet (CPU ns per frame, in virtual time, "
          f"median of {len(next(iter(rounds.values())))}, load average {load}):\n")  # fmt: skip
    print("| variant | ns per frame, median | least | each round |")
    print("|---|---|---|---|")
    for name, values in rounds.items():
        each = ", ".join(f"{v:.0f}" for v in values)
        print(f"| {name} | {med[name]:.0f} | {min(values):.0f} | {each} |")
    print()
    for words, top, bottom in RATIOS:
        print(f"{words}: {med[top] / med[bottom]:.3f}")
    growth = (med[RATIOS[0][1]] - med[RATIOS[0][2]]) - (med[RATIOS[1][1]] - med[RATIOS[1][2]])
    print(
        f"the growth that is the fault's (the first less the second, in ns): {growth:.0f} "
        f"ns, {growth / med[RATIOS[0][2]]:.1%} of a frame with the fault and 1 connection"
    )
    if revision is not None:
        for name in [n.removesuffix(", now") for n in rounds if n.endswith(", now")]:
            now, then = med[f"{name}, now"], med[f"{name}, {revision}"]
            print(f"{name}: this tree / {revision}: {now / then:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--before", help="also compare no fault with this commit's engine")
    parser.add_argument("--json", action="store_true", help="the rounds as JSON too")
    args = parser.parse_args()
    rounds = measure(args.runs)
    if args.before:
        rounds |= before(args.before, args.runs)
    if args.json:
        print(json.dumps(rounds))
    print_table(rounds, args.before)


if __name__ == "__main__":
    main()
