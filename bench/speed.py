"""`make bench`: linkshaper against a Linux bridge in the same lab and the same run, for each
target of the engine-speed issue, and a results table with medians of `--runs` rounds.

1. Pass-through, one TCP stream, offloads on and off: throughput ratio to the bridge; and the
   same through `bench.bare_forwarder`, the floor for any Python forwarder (the engine's
   system calls and nothing else: TCP in batches, ping a frame at a time, as the engine
   forwards each), to tell the language's cost from linkshaper's.
2. Small packets: UDP with 64-byte payloads offered far above capacity: packets/s received,
   ratio to the bridge; plus a py-spy profile of the busier worker (with --profile).
3. Shaped at speed: 1 Gbit/s and 10 ms each way, one TCP stream against rate less overhead,
   with the machine's own congestion control and with cubic, and for reference the kernel's
   tbf with the same rate and queue (the engine only delaying); then UDP at 150 Mbit/s with
   0.1 % loss: the loss on the wire (the client's interface against the server's) against
   its 99 % interval.
4. Timing: ping RTT added over the bridge (median of 200); with latency L = 20 ms one way,
   UDP at 1000 packets/s, the share of packets delayed between L and L + 0.3 ms; beside it,
   how much CPU time the host took from this virtual machine meanwhile (steal).
5. Idle: the engine's CPU with no traffic.
6. Memory under overload: 1 Gbit/s of UDP into a 1 Mbit/s link for 30 s: peak RSS of all
   engine processes, the largest queue seen, and the drops counted as queue drops.
7. Flow rules (hardening issue): one TCP stream and ping through an engine with 1,000 flow
   rules (each with 10 ms of latency, for far ends the traffic is not from), back to back with
   the same engine with none: the throughput ratio and the RTT added.
8. What shaping costs (efficiency issue, `bench.shaped_cost`): CPU under shaped TCP and a
   UDP probe, and shaped capacity with offloads off, beside the seed's engine when
   `LINKSHAPER_BENCH_RUSH` names its binary.
9. What a fate capture costs (`bench.capture_cost`): TCP throughput and engine CPU with
   `linkshaper capture` running against none, on the straight path and shaped at 1 Gbit/s.
10. What the TUI costs (`bench.tui_cost`): its CPU in a real terminal at 200x60 while it shows
   the live demo lab, steady and after a burst of 120 keys, keys lost, and its memory over a
   minute of scripted use (`make bench-tui`: 30 minutes).
11. What a queue discipline costs (`bench.aqm_cost`): one cubic stream through 1 Gbit/s +
   10 ms with CoDel and FQ-CoDel against tail drop: throughput, engine CPU, a ping's RTT.
12. Saturation is honest (`bench.saturation`, performance issue item 2): an offloads-off
   stream through 10 ms beside the straight path, a probe beside it, in each of 5 rounds.
13. Timing under contention (`bench.realtime`, item 5): a probe through 20 ms with two busy
   processes beside the engine, by default and with `--realtime`.
14. What a connection fault costs a packet (`bench.fault_cost`): in virtual time, a link with
   a `blackhole` whose trigger is far away, frames from 1 connection against 10,000.

Numbers on a shared machine are noisy; that is why each pair is measured back to back.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
from datetime import date

import psutil

from bench import (
    aqm_cost,
    capture_cost,
    fault_cost,
    realtime,
    saturation,
    shaped_cost,
    spec_scale,
    tui_cost,
)
from bench.forwarding import FLOW_RULES, flow_rules, passthrough, profile
from bench.shapers import RUSH_VARIABLE, shapers
from bench.shaping import congestion_control, overload, shaped
from engine.lab.lab import Lab


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile small packets")
    parser.add_argument(
        "--only-flow-rules", action="store_true", help="only the flow-rules rows (quick)"
    )
    parser.add_argument(
        "--only-cost", action="store_true", help="only what shaping costs (bench.shaped_cost)"
    )
    parser.add_argument(
        "--only-tui", action="store_true", help="only what the TUI costs (bench.tui_cost)"
    )
    parser.add_argument("--only-capture", action="store_true", help="only what a capture costs")
    parser.add_argument("--only-aqm", action="store_true", help="only what an AQM costs")
    parser.add_argument(
        "--only-saturation", action="store_true", help="only saturation (bench.saturation)"
    )
    return parser.parse_args()


def main() -> None:
    args = arguments()
    lab = Lab("lsbench")
    if only_part(lab, args):
        return
    rounds = speed_rounds(lab, args.runs)
    memory = overload(lab)
    congestion = congestion_control(lab)
    print_speed_table(rounds, memory, congestion, args.runs)
    shaped_cost_table(lab, args.runs, args.profile)
    capture_cost_table(lab, args.runs)
    aqm_cost.print_table([aqm_cost.one_round(lab) for _ in range(args.runs)])
    saturation.print_table([saturation.one_round(lab) for _ in range(saturation.ROUNDS)])
    realtime.print_table([realtime.one_round(lab) for _ in range(args.runs)])
    load = os.getloadavg()[0]
    spec_scale.print_table([spec_scale.measure_round(lab) for _ in range(args.runs)], load)
    tui_cost_table()
    fault_cost.print_table(fault_cost.measure(fault_cost.RUNS))
    if args.profile:
        print("\nsmall packets, egress worker, self time (py-spy):\n")
        print(profile(lab))


def only_part(lab: Lab, args: argparse.Namespace) -> bool:
    """Run the one part an `--only-...` option asks for, if any: whether one was."""
    if args.only_cost:
        shaped_cost_table(lab, args.runs, args.profile)
        return True
    if args.only_tui:
        tui_cost_table()
        return True
    if args.only_capture:
        capture_cost_table(lab, args.runs)
        return True
    if args.only_saturation:
        saturation.print_table([saturation.one_round(lab) for _ in range(saturation.ROUNDS)])
        return True
    if args.only_aqm:
        aqm_cost.print_table([aqm_cost.one_round(lab) for _ in range(args.runs)])
        return True
    if args.only_flow_rules:
        only = [flow_rules(lab) for _ in range(args.runs)]
        print("\n".join(json.dumps({k: round(v, 4) for k, v in r.items()}) for r in only))
        for row in flow_rule_rows(
            {key: statistics.median(r[key] for r in only) for key in only[0]}
        ):
            print("| " + " | ".join(row) + " |")
        return True
    return False


def speed_rounds(lab: Lab, runs: int) -> list[dict[str, float]]:
    """`runs` rounds of pass-through, shaped and flow rules, each printed as it ends."""
    rounds: list[dict[str, float]] = []
    for run in range(runs):
        result: dict[str, float] = {}
        result |= passthrough(lab, offloads=True)
        result |= passthrough(lab, offloads=False)
        result |= shaped(lab)
        result |= flow_rules(lab)
        print(f"round {run + 1}: {json.dumps({k: round(v, 4) for k, v in result.items()})}",
              flush=True)  # fmt: skip
        rounds.append(result)
    return rounds


def print_speed_table(
    rounds: list[dict[str, float]], memory: dict[str, float], congestion: str, runs: int
) -> None:
    """The header and the results table of the speed rounds, with their medians."""
    med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(f"\nlinkshaper bench, {date.today()}, {platform.node()}, {psutil.cpu_count()} cores, "
          f"kernel {platform.release()}, median of {runs} runs\n")  # fmt: skip
    rows = speed_rows(med, rounds, memory, congestion)
    print("| measure | Linux bridge / target | linkshaper | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def speed_rows(
    med: dict[str, float],
    rounds: list[dict[str, float]],
    memory: dict[str, float],
    congestion: str,
) -> list[tuple[str, str, str, str]]:
    """The table's rows: measure, Linux bridge or target, linkshaper, ratio."""
    expected_loss = med["sent"] * 0.001
    band = 2.576 * math.sqrt(expected_loss * (1 - 0.001))
    goodput = 1e9 * 1448 / 1538
    return [
        ("pass-through TCP, offloads on", f"{med['bridge_tcp_on']:.2f} Gbit/s",
         f"{med['engine_tcp_on']:.2f} Gbit/s", f"{med['engine_tcp_on'] / med['bridge_tcp_on']:.0%}"),
        ("pass-through TCP, offloads off", f"{med['bridge_tcp_off']:.2f} Gbit/s",
         f"{med['engine_tcp_off']:.2f} Gbit/s", f"{med['engine_tcp_off'] / med['bridge_tcp_off']:.0%}"),
        ("(floor) bare Python loop, batched, TCP, offloads on", f"{med['bridge_tcp_on']:.2f} Gbit/s",
         f"{med['bare_tcp_on']:.2f} Gbit/s", f"{med['bare_tcp_on'] / med['bridge_tcp_on']:.0%}"),
        ("(floor) bare Python loop, batched, TCP, offloads off", f"{med['bridge_tcp_off']:.2f} Gbit/s",
         f"{med['bare_tcp_off']:.2f} Gbit/s", f"{med['bare_tcp_off'] / med['bridge_tcp_off']:.0%}"),
        ("UDP, 64-byte payloads, received", f"{med['bridge_pps'] / 1e3:.0f} kpps",
         f"{med['engine_pps'] / 1e3:.0f} kpps", f"{med['engine_pps'] / med['bridge_pps']:.0%}"),
        ("ping RTT (median of 200)", f"{med['bridge_rtt']:.3f} ms", f"{med['engine_rtt']:.3f} ms",
         f"+{med['engine_rtt'] - med['bridge_rtt']:.3f} ms"),
        ("ping RTT with --precise (polling for sparse frames)", f"{med['bridge_rtt']:.3f} ms",
         f"{med['precise_rtt']:.3f} ms", f"+{med['precise_rtt'] - med['bridge_rtt']:.3f} ms"),
        ("(floor) bare Python loop, frame by frame, ping RTT", f"{med['bridge_rtt']:.3f} ms",
         f"{med['bare_rtt']:.3f} ms", f"+{med['bare_rtt'] - med['bridge_rtt']:.3f} ms"),
        (f"TCP at 1 Gbit/s + 10 ms each way ({congestion}, this machine's own)",
         f"{goodput / 1e6:.0f} Mbit/s (rate less overhead)",
         f"{med['shaped_tcp'] / 1e6:.0f} Mbit/s", f"{med['shaped_tcp'] / goodput:.0%}"),
        ("(the same with cubic)", f"{goodput / 1e6:.0f} Mbit/s",
         f"{med['shaped_tcp_cubic'] / 1e6:.0f} Mbit/s", f"{med['shaped_tcp_cubic'] / goodput:.0%}"),
        (f"(reference) the kernel's tbf with the same rate and queue, {congestion}; linkshaper "
         "only delays", f"{goodput / 1e6:.0f} Mbit/s",
         f"{med['shaped_tcp_tbf'] / 1e6:.0f} Mbit/s", f"{med['shaped_tcp_tbf'] / goodput:.0%}"),
        ("UDP loss at 0.1 %, on the wire (150 Mbit/s, 10 s)", f"{expected_loss:.0f} ± {band:.0f} of {med['sent']:.0f}",
         f"{med['lost']:.0f} lost", "inside" if abs(med["lost"] - expected_loss) <= band else "OUTSIDE"),
        ("one-way delay through a bridge, 1000 pps", "(the path itself)",
         f"p50 {med['bridge_delay_p50']:.3f} / p99 {med['bridge_delay_p99']:.3f} ms", ""),
        ("one-way delay, L = 20 ms, 1000 pps", "p1 ≥ 20 ms, p99 ≤ 20.3 ms",
         f"p1 {med['delay_p1']:.2f} / p50 {med['delay_p50']:.2f} / p99 {med['delay_p99']:.2f} ms",
         "inside" if med["delay_p1"] >= 20 and med["delay_p99"] <= 20.3 else "OUTSIDE"),
        ("(each round) p99 of that delay, and the host's steal meanwhile", "(the machine)",
         ", ".join(f"{r['delay_p99']:.2f} ms ({r['steal']:.1%})" for r in rounds), ""),
        ("one-way delay, L = 20 ms, 1000 pps, --precise", "p1 ≥ 20 ms, p99 ≤ 20.3 ms",
         f"p1 {med['precise_p1']:.2f} / p99 {med['precise_p99']:.2f} ms",
         "inside" if med["precise_p1"] >= 20 and med["precise_p99"] <= 20.3 else "OUTSIDE"),
        ("engine CPU, idle", "≤ 1 % of a core", f"{med['idle_cpu']:.2f} %", ""),
        ("1 Gbit/s UDP into 1 Mbit/s, 30 s", "RSS < 200 MB, queue ≤ 1000",
         f"RSS {memory['peak_rss_mb']:.0f} MB, queue ≤ {memory['peak_queue']:.0f}, "
         f"{memory['queue_drops']:.0f} queue drops, {memory['other_drops']:.0f} other", ""),
        *flow_rule_rows(med),
    ]  # fmt: skip


def capture_cost_table(lab: Lab, runs: int) -> None:
    """What a fate capture costs (`bench.capture_cost`)."""
    rounds = [capture_cost.one_round(lab) for _ in range(runs)]
    print("\nwhat a capture costs (linkshaper capture /dev/null running, against none):\n")
    print("| measure | capture off | capture on | on / off |")
    print("|---|---|---|---|")
    for row in capture_cost.rows(capture_cost.medians(rounds)):
        print("| " + " | ".join(row) + " |")


def tui_cost_table() -> None:
    """What the TUI costs beside the engine's CPU (`bench.tui_cost`), if tmux is there."""
    if shutil.which("tmux") is None:
        print("\n(the TUI's cost is left out: no tmux)")
        return
    print("\nwhat the TUI costs (a real terminal: tmux), the demo lab live:\n")
    shaped_cost.print_table(tui_cost.measure("lstui", minutes=1.0))


def shaped_cost_table(lab: Lab, runs: int, profile: bool) -> None:
    """What shaping costs, linkshaper beside the seed's engine (`bench.shaped_cost`)."""
    everyone = shapers()
    if not any(shaper.rush for shaper in everyone):
        print(f"\n(the seed's engine is left out: {RUSH_VARIABLE} is not set)")
    rounds = []
    for run in range(runs):
        rounds.append(shaped_cost.one_round(lab, everyone))
        print(f"cost round {run + 1}: {json.dumps(rounds[-1])}", flush=True)
    print("\nwhat shaping costs (CPU as a share of one core, all the shaper's processes):\n")
    shaped_cost.print_table(shaped_cost.rows(shaped_cost.medians(rounds), everyone))
    if profile:
        shaped_cost.print_profiles(shaped_cost.profile_round(lab, everyone[0]), everyone[0].name)


def flow_rule_rows(med: dict[str, float]) -> list[tuple[str, str, str, str]]:
    return [
        (f"pass-through TCP with {FLOW_RULES} flow rules (10 ms each, not matched), offloads on",
         f"{med['rules0_tcp']:.2f} Gbit/s with none; cost ≤ 20 %",
         f"{med['rules_tcp']:.2f} Gbit/s", f"{med['rules_tcp'] / med['rules0_tcp']:.0%}"),
        (f"ping RTT with {FLOW_RULES} flow rules (median of 200)",
         f"{med['rules0_rtt']:.3f} ms with none", f"{med['rules_rtt']:.3f} ms",
         f"+{med['rules_rtt'] - med['rules0_rtt']:.3f} ms"),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
