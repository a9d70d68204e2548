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
10. What the TUI costs (`bench.tui_cost`): its CPU in a real terminal at 80x24, 120x40 and
   200x60 while it shows the live demo lab, beside the engine's.
11. What a queue discipline costs (`bench.aqm_cost`): one cubic stream through 1 Gbit/s +
   10 ms with CoDel and FQ-CoDel against tail drop: throughput, engine CPU, a ping's RTT.

Numbers on a shared machine are noisy; that is why each pair is measured back to back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import psutil

from bench import aqm_cost, capture_cost, shaped_cost, tui_cost
from bench.passthrough import cpu_percent, engine_processes
from engine.environments.harness import (
    EngineProcess,
    iperf3,
    ping_rtts,
    probe,
    received_bits_per_second,
    wire_packets,
)
from engine.environments.lab import INNER, OUTER, SERVER_IP, Lab
from engine.model.spec import PASS_THROUGH, QueueLimit, Spec

ROOT = Path(__file__).resolve().parent.parent

SECONDS = 5
#: The shaped run's queue: the spec's default, as a user gets it.
SHAPED_QUEUE = QueueLimit().packets or 0
#: A full-size frame on the wire as tbf counts it: 1500 bytes of IP and an Ethernet header.
FULL_FRAME = 1514
KERNEL_SHAPER = "ifb-shaper"
#: The engine's option that buys timing with CPU (polling), measured beside the default.
PRECISE = ("--precise",)
T = TypeVar("T")


def udp_report(lab: Lab, bitrate: str, size: int, seconds: int = SECONDS) -> dict[str, Any]:
    return iperf3(lab, seconds=seconds, port=5311, omit=0,
                  extra=("-u", "-b", bitrate, "-l", str(size)))  # fmt: skip


def received_pps(report: dict[str, Any]) -> float:
    total = report["end"]["sum"]
    received = total["packets"] - total["lost_packets"]
    return float(received) / float(total["seconds"])


def with_engine(lab: Lab, spec: Spec, work: Any, extra: tuple[str, ...] = ()) -> Any:
    with tempfile.TemporaryDirectory() as workdir:
        engine = EngineProcess(lab, Path(workdir), spec, extra=extra)
        try:
            engine.wait_ready()
            return work(engine)
        finally:
            engine.close()


def passthrough(lab: Lab, offloads: bool) -> dict[str, float]:
    lab.up(offloads=offloads)
    try:
        lab.bridge(True)
        time.sleep(0.5)
        bridge = received_bits_per_second(iperf3(lab, seconds=SECONDS))
        bridge_rtt = statistics.median(ping_rtts(lab, count=200, interval=0.01)) if offloads else 0
        bridge_pps = received_pps(udp_report(lab, "0", 64)) if offloads else 0
        lab.bridge(False)

        def work(engine: EngineProcess) -> dict[str, float]:
            out = {"tcp": received_bits_per_second(iperf3(lab, seconds=SECONDS))}
            if offloads:
                out["rtt"] = statistics.median(ping_rtts(lab, count=200, interval=0.01))
                # Idle from half a second after the last packet: a worker polls for
                # POLL_WINDOW after sparse frames and streams for STREAM_HOLD (engine/daemon/worker/waits.py).
                time.sleep(0.5)
                out["idle_cpu"] = cpu_percent(engine_processes(engine), 3.0)
                out["pps"] = received_pps(udp_report(lab, "0", 64))
            return out

        engine = with_engine(lab, PASS_THROUGH, work)
        if offloads:
            precise_rtt = with_engine(
                lab,
                PASS_THROUGH,
                lambda _: statistics.median(ping_rtts(lab, count=200, interval=0.01)),
                PRECISE,
            )
        bare = bare_forwarder(lab, offloads)
    finally:
        lab.down()
    key = "on" if offloads else "off"
    result = {f"bridge_tcp_{key}": bridge / 1e9, f"engine_tcp_{key}": engine["tcp"] / 1e9,
              f"bare_tcp_{key}": bare["tcp"] / 1e9}  # fmt: skip
    if offloads:
        result |= {"bridge_rtt": bridge_rtt, "engine_rtt": engine["rtt"], "bare_rtt": bare["rtt"],
                   "idle_cpu": engine["idle_cpu"], "bridge_pps": bridge_pps,
                   "engine_pps": engine["pps"], "precise_rtt": precise_rtt}  # fmt: skip
    return result


FLOW_RULES = 1000


def many_flow_rules(count: int) -> Spec:
    """`count` flow rules for far ends in 198.19.0.0/16 (nothing in the lab), each impaired."""
    link = {"ingress": {"latency": 10}, "egress": {"latency": 10}}
    return Spec.model_validate(
        {
            "flows": [
                {"label": f"f{i}", "flow": {"ip": f"198.19.{i // 250}.{i % 250}"}, "link": link}
                for i in range(count)
            ]
        }
    )


def flow_rules(lab: Lab) -> dict[str, float]:
    """TCP and ping through the engine with no flow rule, then with FLOW_RULES of them."""
    lab.up(offloads=True)
    try:

        def work(engine: EngineProcess) -> dict[str, float]:
            time.sleep(0.5)
            return {
                "tcp": received_bits_per_second(iperf3(lab, seconds=SECONDS)),
                "rtt": statistics.median(ping_rtts(lab, count=200, interval=0.01)),
            }

        none = with_engine(lab, PASS_THROUGH, work)
        many = with_engine(lab, many_flow_rules(FLOW_RULES), work)
    finally:
        lab.down()
    return {"rules0_tcp": none["tcp"] / 1e9, "rules0_rtt": none["rtt"],
            "rules_tcp": many["tcp"] / 1e9, "rules_rtt": many["rtt"]}  # fmt: skip


def bare_forwarder(lab: Lab, offloads: bool) -> dict[str, float]:
    """The same measures through `bench.bare_forwarder`, the floor for Python: TCP with it
    batching, the ping RTT with it forwarding one frame at a time, as the engine does each."""
    report = bare_run(lab, batched=True, work=lambda: iperf3(lab, seconds=SECONDS))
    out = {"tcp": received_bits_per_second(report)}
    if offloads:
        rtts = bare_run(lab, batched=False, work=lambda: ping_rtts(lab, count=200, interval=0.01))
        out["rtt"] = statistics.median(rtts)
    return out


def bare_run(lab: Lab, batched: bool, work: Callable[[], T]) -> T:
    """`work` while the bare loop forwards in the lab's box."""
    seconds = SECONDS + 12
    args = [OUTER, INNER, str(seconds), *(["--batch"] if batched else [])]
    process = subprocess.Popen(lab.in_ns("box", sys.executable, "-m", "bench.bare_forwarder", *args),
                               cwd=ROOT, start_new_session=True)  # fmt: skip
    try:
        time.sleep(1.0)
        return work()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def shaped(lab: Lab) -> dict[str, float]:
    lab.up()
    try:
        fast = Spec.model_validate({"ingress": {"rate": "1gbit", "latency": "10ms"},
                                    "egress": {"rate": "1gbit", "latency": "10ms"}})  # fmt: skip

        # With the machine's own congestion control, and with cubic (Linux's default): BBR
        # (often the machine's own) fills a queue shorter than the path's BDP (the default
        # 1000 packets are 0.6 of it here) whenever a stall makes it overestimate the rate.
        def tcp_runs(engine: EngineProcess) -> tuple[float, float]:
            own = received_bits_per_second(iperf3(lab, seconds=SECONDS))
            cubic = received_bits_per_second(iperf3(lab, seconds=SECONDS, extra=("-C", "cubic")))
            return own, cubic

        tcp, tcp_cubic = with_engine(lab, fast, tcp_runs)
        # The kernel's own shaper with the same rate and queue, the engine only delaying: the
        # reference for what the machine's congestion control makes of this queue.
        kernel_shaper(lab, "1gbit", SHAPED_QUEUE * FULL_FRAME)
        delaying = Spec.model_validate(
            {"ingress": {"latency": "10ms"}, "egress": {"latency": "10ms"}}
        )
        tcp_tbf = with_engine(lab, delaying,
                              lambda _: received_bits_per_second(iperf3(lab, seconds=SECONDS)))  # fmt: skip
        kernel_shaper(lab, None, 0)
        lossy = Spec.model_validate({"ingress": {}, "egress": {"loss": 0.001}})

        def loss_run(engine: EngineProcess) -> tuple[int, int]:
            # Well inside what the engine forwards, so that only the configured loss loses.
            # Counted on the wire: frames the client's interface sent against frames that
            # reached the server's, so that a receiver falling behind on a busy machine
            # (iperf3's own count) is not taken for the engine's loss.
            sent, arrived = wire_packets(lab, "client", "tx"), wire_packets(lab, "server", "rx")
            udp_report(lab, "150M", 1400, seconds=10)
            sent = wire_packets(lab, "client", "tx") - sent
            return sent - (wire_packets(lab, "server", "rx") - arrived), sent

        lost, sent = with_engine(lab, lossy, loss_run)

        delayed = Spec.model_validate({"ingress": {}, "egress": {"latency": "20ms"}})

        def timing(engine: EngineProcess | None) -> dict[str, float]:
            # Resolve the server's address first: ARP through a 20 ms link delays the first
            # datagrams by more than the link does, and that is not what is measured here.
            lab.run("client", "ping", "-c", "2", "-i", "0.1", SERVER_IP, check=False)
            receiver = subprocess.Popen(probe(lab, "server", "recv", "5400", "--idle", "1"),
                                        stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
            time.sleep(0.3)
            stolen, started = host_steal(), time.monotonic()
            subprocess.run(probe(lab, "client", "send", SERVER_IP, "5400", "--count", "5000",
                                 "--pps", "1000", "--size", "200"), check=True, cwd=ROOT)  # fmt: skip
            cpu_time = (time.monotonic() - started) * (os.cpu_count() or 1)
            out, _ = receiver.communicate(timeout=30)
            return json.loads(out) | {"steal": (host_steal() - stolen) / cpu_time}  # type: ignore[no-any-return]

        delays = with_engine(lab, delayed, timing)
        precise = with_engine(lab, delayed, timing, PRECISE)
        lab.bridge(True)
        time.sleep(0.5)
        base = timing(None)  # the same probe through a bridge: the path's own delay
        lab.bridge(False)
    finally:
        lab.down()
    return {"shaped_tcp": tcp, "shaped_tcp_cubic": tcp_cubic, "shaped_tcp_tbf": tcp_tbf,
            "lost": lost, "sent": sent,
            "delay_p1": delays["delay_p1_ms"], "delay_p99": delays["delay_p99_ms"], "delay_p50": delays["delay_p50_ms"],
            "bridge_delay_p50": base["delay_p50_ms"], "bridge_delay_p99": base["delay_p99_ms"],
            "steal": delays["steal"],
            "precise_p1": precise["delay_p1_ms"], "precise_p99": precise["delay_p99_ms"]}  # fmt: skip


def kernel_shaper(lab: Lab, rate: str | None, limit_bytes: int) -> None:
    """Put the kernel's token bucket (tbf) with `rate` and a tail-drop queue of `limit_bytes` on
    what reaches the lab's server (client to server), or take it away (`rate` None). A qdisc
    shapes what a device sends, so the server's arrivals are redirected through an IFB
    device and shaped as it sends them on."""
    if rate is None:
        lab.run("server", "tc", "qdisc", "del", "dev", "eth0", "ingress", check=False)
        lab.run("server", "ip", "link", "del", KERNEL_SHAPER, check=False)
        return
    lab.run("server", "ip", "link", "add", KERNEL_SHAPER, "type", "ifb")
    lab.run("server", "ip", "link", "set", "dev", KERNEL_SHAPER, "up")
    lab.run("server", "tc", "qdisc", "add", "dev", "eth0", "handle", "ffff:", "ingress")
    lab.run("server", "tc", "filter", "add", "dev", "eth0", "parent", "ffff:", "protocol", "all",
            "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev",
            KERNEL_SHAPER)  # fmt: skip
    # A burst of one super-frame: tbf cuts larger ones into wire packets.
    lab.run("server", "tc", "qdisc", "add", "dev", KERNEL_SHAPER, "root", "tbf", "rate", rate,
            "burst", "64kb", "limit", str(limit_bytes))  # fmt: skip


def congestion_control(lab: Lab) -> str:
    """The TCP congestion control the lab's hosts use unless told otherwise."""
    lab.up()
    try:
        return lab.run("client", "sysctl", "-n", "net.ipv4.tcp_congestion_control").stdout.strip()
    finally:
        lab.down()


def host_steal() -> float:
    """CPU seconds the host has taken from this virtual machine so far, all CPUs (the "steal"
    column of /proc/stat). No process, forwarder or not, runs while its CPU is stolen, so
    this bounds what the one-way delay's p99 can show; 0 on bare metal."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def overload(lab: Lab, seconds: int = 30) -> dict[str, float]:
    lab.up()
    try:
        slow = Spec.model_validate({"ingress": {}, "egress": {"rate": "1mbit"}})

        def work(engine: EngineProcess) -> dict[str, float]:
            processes = engine_processes(engine)
            client = subprocess.Popen(
                lab.in_ns("client", "iperf3", "-c", SERVER_IP, "-p", "5312", "-u", "-b", "1G",
                          "-t", str(seconds)),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            peak_rss = 0
            peak_queue = 0
            with engine.client() as control:
                while client.poll() is None:
                    peak_rss = max(peak_rss, sum(p.memory_info().rss for p in processes))
                    egress = control.stats().egress
                    if egress is not None:
                        peak_queue = max(peak_queue, egress.total.queue_packets)
                    time.sleep(0.5)
                final = control.stats().egress
            assert final is not None
            return {"peak_rss_mb": peak_rss / 2**20, "peak_queue": peak_queue,
                    "queue_drops": final.total.drops.queue_full,
                    "other_drops": final.total.drops.loss + final.total.drops.blocked}  # fmt: skip

        server = subprocess.Popen(lab.in_ns("server", "iperf3", "-s", "-1", "-p", "5312"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            time.sleep(0.3)
            return with_engine(lab, slow, work)  # type: ignore[no-any-return]
        finally:
            server.kill()
            server.wait()
    finally:
        lab.down()


def profile(lab: Lab) -> str:
    """Where a worker's time goes under small packets: py-spy's top functions."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    lab.up()
    try:

        def work(engine: EngineProcess) -> str:
            with engine.client() as control:
                pid = control.info().worker_pids["egress"]
            out = Path(tempfile.mkdtemp()) / "profile.txt"
            spy_run = subprocess.Popen([spy, "record", "-d", "4", "-r", "200", "-f", "raw",
                                        "-o", str(out), "-p", str(pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            udp_report(lab, "0", 64, seconds=5)
            spy_run.wait(30)
            return shaped_cost.summarize(out.read_text(), top=12)

        return with_engine(lab, PASS_THROUGH, work)  # type: ignore[no-any-return]
    finally:
        lab.down()


def main() -> None:
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
    args = parser.parse_args()
    lab = Lab("lsbench")
    if args.only_cost:
        shaped_cost_table(lab, args.runs, args.profile)
        return
    if args.only_tui:
        tui_cost_table()
        return
    if args.only_capture:
        capture_cost_table(lab, args.runs)
        return
    if args.only_aqm:
        aqm_cost.print_table([aqm_cost.one_round(lab) for _ in range(args.runs)])
        return
    if args.only_flow_rules:
        only = [flow_rules(lab) for _ in range(args.runs)]
        print("\n".join(json.dumps({k: round(v, 4) for k, v in r.items()}) for r in only))
        for row in flow_rule_rows(
            {key: statistics.median(r[key] for r in only) for key in only[0]}
        ):
            print("| " + " | ".join(row) + " |")
        return
    rounds: list[dict[str, float]] = []
    for run in range(args.runs):
        result: dict[str, float] = {}
        result |= passthrough(lab, offloads=True)
        result |= passthrough(lab, offloads=False)
        result |= shaped(lab)
        result |= flow_rules(lab)
        print(f"round {run + 1}: {json.dumps({k: round(v, 4) for k, v in result.items()})}",
              flush=True)  # fmt: skip
        rounds.append(result)
    memory = overload(lab)
    congestion = congestion_control(lab)
    med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    expected_loss = med["sent"] * 0.001
    band = 2.576 * math.sqrt(expected_loss * (1 - 0.001))
    goodput = 1e9 * 1448 / 1538
    print(f"\nlinkshaper bench, {date.today()}, {platform.node()}, {psutil.cpu_count()} cores, "
          f"kernel {platform.release()}, median of {args.runs} runs\n")  # fmt: skip
    rows = [
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
    print("| measure | Linux bridge / target | linkshaper | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    shaped_cost_table(lab, args.runs, args.profile)
    capture_cost_table(lab, args.runs)
    aqm_cost.print_table([aqm_cost.one_round(lab) for _ in range(args.runs)])
    tui_cost_table()
    if args.profile:
        print("\nsmall packets, egress worker, self time (py-spy):\n")
        print(profile(lab))


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
    shaped_cost.print_table(tui_cost.rows(tui_cost.measure()))


def shaped_cost_table(lab: Lab, runs: int, profile: bool) -> None:
    """What shaping costs, linkshaper beside the seed's engine (`bench.shaped_cost`)."""
    everyone = shaped_cost.shapers()
    if not any(shaper.rush for shaper in everyone):
        print(f"\n(the seed's engine is left out: {shaped_cost.RUSH_VARIABLE} is not set)")
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
