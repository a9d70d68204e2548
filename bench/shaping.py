"""What shaping at speed does, for `bench.speed`: TCP at 1 Gbit/s + 10 ms beside the kernel's tbf,
loss on the wire, one-way delay against a bridge, and memory under overload."""

from __future__ import annotations

import json
import os
import subprocess
import time
from functools import partial
from pathlib import Path

from bench.engine_runs import PRECISE, SECONDS, udp_report, with_engine
from bench.passthrough import engine_processes
from engine.lab.harness import (
    EngineProcess,
    iperf3,
    probe,
    received_bits_per_second,
    wire_packets,
)
from engine.lab.lab import SERVER_IP, Lab
from engine.model.spec import QueueLimit, Spec

ROOT = Path(__file__).resolve().parent.parent
#: The shaped run's queue: the spec's default, as a user gets it.
SHAPED_QUEUE = QueueLimit().packets or 0
#: A full-size frame on the wire as tbf counts it: 1500 bytes of IP and an Ethernet header.
FULL_FRAME = 1514
KERNEL_SHAPER = "ifb-shaper"


def wire_loss(lab: Lab, engine: EngineProcess) -> tuple[int, int]:
    """UDP at 150 Mbit/s through `engine`: (frames lost on the wire, frames sent)."""
    # Well inside what the engine forwards, so that only the configured loss loses.
    # Counted on the wire: frames the client's interface sent against frames that
    # reached the server's, so that a receiver falling behind on a busy machine
    # (iperf3's own count) is not taken for the engine's loss.
    sent, arrived = wire_packets(lab, "client", "tx"), wire_packets(lab, "server", "rx")
    udp_report(lab, "150M", 1400, seconds=10)
    sent = wire_packets(lab, "client", "tx") - sent
    return sent - (wire_packets(lab, "server", "rx") - arrived), sent


def one_way_delays(lab: Lab, engine: EngineProcess | None) -> dict[str, float]:
    """The probe's one-way delay quantiles at 1000 packets/s (through `engine`, or whatever
    joins the box when None), and the host's steal meanwhile."""
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
        tcp_tbf = with_engine(
            lab, delaying, lambda _: received_bits_per_second(iperf3(lab, seconds=SECONDS))
        )
        kernel_shaper(lab, None, 0)
        lossy = Spec.model_validate({"ingress": {}, "egress": {"loss": 0.001}})

        lost, sent = with_engine(lab, lossy, partial(wire_loss, lab))

        delayed = Spec.model_validate({"ingress": {}, "egress": {"latency": "20ms"}})

        timing = partial(one_way_delays, lab)
        delays = with_engine(lab, delayed, timing)
        precise = with_engine(lab, delayed, timing, PRECISE)
        lab.bridge(True)
        time.sleep(0.5)
        base = one_way_delays(lab, None)  # the same probe through a bridge: the path's own delay
        lab.bridge(False)
    finally:
        lab.down()
    return {"shaped_tcp": tcp, "shaped_tcp_cubic": tcp_cubic, "shaped_tcp_tbf": tcp_tbf,
            "lost": lost, "sent": sent,
            "delay_p1": delays["delay_p1_ms"], "delay_p99": delays["delay_p99_ms"],
            "delay_p50": delays["delay_p50_ms"],
            "bridge_delay_p50": base["delay_p50_ms"], "bridge_delay_p99": base["delay_p99_ms"],
            "steal": delays["steal"],
            "precise_p1": precise["delay_p1_ms"],
            "precise_p99": precise["delay_p99_ms"]}  # fmt: skip


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
