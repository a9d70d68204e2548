"""The engine of this tree against the engine of an earlier commit, in the same lab and the same
sitting (`python -m bench.tree_cost --before REV`): did a change cost the path it did not mean
to touch? Each tree is measured by its own bench code, rounds interleaved (the order flips each
round), so that the machine's load falls on both alike.

Each round, each tree, no impairment but what is said (no fault, no seed), `--no-fast-path`
so that every frame goes through the Python path:

1. pass-through, offloads on: one TCP stream's throughput and the engine's CPU under it
   (`bench.passthrough.measure_engine`);
2. shaping cost: TCP both ways at 80 % of 100 Mbit/s + 20 ms each way, the engine's CPU
   (`bench.shaped_loads.tcp_load`);
3. offloads off, 10 ms each way, one TCP stream: frames a second and CPU per 10 k frames a
   second (`bench.shaped_loads.frames_load`).

The earlier tree is `git archive`d into a temporary directory (engine/ and bench/) and run with
this Python and its packages. Needs root (it builds its own lab, `--prefix`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
#: One round in one tree, run by that tree's own bench modules: prints one JSON line.
ROUND = """
import json, sys
from bench.passthrough import measure_engine
from bench.shaped_loads import frames_load, tcp_load
from bench.shapers import Shaper, both_ways
from engine.lab.lab import Lab
lab, shaper, out = Lab(sys.argv[1]), Shaper("linkshaper", ("--no-fast-path",)), {}
lab.up(offloads=True)
try:
    out.update({f"pass_{k}": v for k, v in measure_engine(lab, 5, fast_path=False).items()})
    out.update({f"tcp100_{k}": v for k, v in tcp_load(lab, shaper, 100).items()})
finally:
    lab.down()
lab.up(offloads=False)
try:
    out.update({f"frames_{k}": v for k, v in frames_load(lab, shaper, both_ways(None, 10)).items()})
finally:
    lab.down()
print(json.dumps(out))
"""
#: What the table shows: the key, its words, and how it is printed.
ROWS = (
    ("pass_gbit", "pass-through TCP, offloads on (Gbit/s)", "{:.2f}"),
    ("pass_load_cpu", "engine CPU under it (% of a core)", "{:.0f}"),
    ("tcp100_cpu", "TCP both ways, 80 % of 100 Mbit/s + 20 ms: CPU (%)", "{:.1f}"),
    ("frames_fps", "offloads off, 10 ms, one TCP stream: frames/s", "{:.0f}"),
    ("frames_per_10k", "CPU per 10 k frames/s (%)", "{:.2f}"),
)


def export(revision: str, into: Path) -> Path:
    """The engine and bench of `revision`, as files under `into`."""
    archive = subprocess.run(["git", "-C", str(HERE), "archive", revision, "engine", "bench"],
                             check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def one_round(tree: Path, prefix: str) -> dict[str, float]:
    """One round of the loads with the engine of `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", ROUND, prefix], cwd=tree, env=env,
                          check=True, capture_output=True, text=True, timeout=900)  # fmt: skip
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    fps = figures["frames_fps"]
    figures["frames_per_10k"] = figures["frames_cpu"] / (fps / 1e4) if fps else float("nan")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prefix", default="lstree", help="the lab's namespace prefix")
    args = parser.parse_args()
    rounds: dict[str, list[dict[str, float]]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory() as workdir:
        trees = {"before": export(args.before, Path(workdir)), "now": HERE}
        for run in range(args.runs):
            order = ("before", "now") if run % 2 == 0 else ("now", "before")
            for name in order:
                rounds[name].append(one_round(trees[name], args.prefix))
                print(f"round {run + 1}, {name}: {json.dumps(rounds[name][-1])}", flush=True)
    load = os.getloadavg()
    print(f"\n{args.before} (before) against this tree (now), median of {args.runs}, "
          f"load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n")  # fmt: skip
    print("| measure | before | now | now / before | each round, before; now |")
    print("|---|---|---|---|---|")
    for key, words, form in ROWS:
        before = [r[key] for r in rounds["before"]]
        now = [r[key] for r in rounds["now"]]
        each = "; ".join(", ".join(form.format(v) for v in side) for side in (before, now))
        ratio = statistics.median(now) / statistics.median(before)
        print(f"| {words} | {form.format(statistics.median(before))} | "
              f"{form.format(statistics.median(now))} | {ratio:.2f} | {each} |")  # fmt: skip


if __name__ == "__main__":
    main()
