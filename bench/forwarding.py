"""What forwarding costs, for `bench.speed`: pass-through against a Linux bridge and against a
bare Python loop (`bench.bare_forwarder`), the same with many flow rules, and a profile of a
worker under small packets."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench.cpu_meter import summarize
from bench.engine_runs import PRECISE, SECONDS, received_pps, udp_report, with_engine
from bench.passthrough import cpu_percent, engine_processes
from engine.lab.harness import EngineProcess, iperf3, ping_rtts, received_bits_per_second
from engine.lab.lab import INNER, OUTER, Lab
from engine.model.spec import PASS_THROUGH, Spec

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


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
                # POLL_WINDOW after sparse frames and streams for STREAM_HOLD
                # (engine/daemon/worker/waits.py).
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
    command = lab.in_ns("box", sys.executable, "-m", "bench.bare_forwarder", *args)
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
    try:
        time.sleep(1.0)
        return work()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def profile(lab: Lab) -> str:
    """Where a worker's time goes under small packets: py-spy's top functions."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    lab.up()
    try:

        def work(engine: EngineProcess) -> str:
            with engine.client() as control:
                pid = control.info().worker_pids["egress"]
            out = Path(tempfile.mkdtemp()) / "profile.txt"
            spy_run = subprocess.Popen(
                [spy, "record", "-d", "4", "-r", "200", "-f", "raw",
                 "-o", str(out), "-p", str(pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            udp_report(lab, "0", 64, seconds=5)
            spy_run.wait(30)
            return summarize(out.read_text(), top=12)

        return with_engine(lab, PASS_THROUGH, work)  # type: ignore[no-any-return]
    finally:
        lab.down()
