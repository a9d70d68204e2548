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
import json
import math
import statistics

from bench.shaped_loads import LATENCY_MS, frames_load, probe_alone, tcp_load
from bench.shapers import MODES, Shaper, both_ways, shapers
from engine.lab.lab import Lab
from engine.model.spec import PASS_THROUGH


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
