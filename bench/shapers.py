"""The contenders of `bench.shaped_cost`: linkshaper with some options, or the seed's engine
(rush) when `LINKSHAPER_BENCH_RUSH` names its binary, each run in the lab's box with a spec."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.passthrough import engine_processes
from engine.lab.harness import EngineProcess
from engine.lab.lab import INNER, OUTER, SERVER_IP, Lab
from engine.model.spec import Spec, seed_view

RUSH_VARIABLE = "LINKSHAPER_BENCH_RUSH"
PROBE_PORT = 5400


@dataclass
class Running:
    """A shaper while it runs: its processes, and linkshaper's engine (None for the seed's)."""

    processes: list[psutil.Process]
    engine: EngineProcess | None = None


@dataclass
class Shaper:
    """A way to shape the lab's box: linkshaper with some options, or the seed's engine."""

    name: str
    extra: tuple[str, ...] = ()
    rush: str | None = None

    @contextlib.contextmanager
    def running(self, lab: Lab, spec: Spec) -> Iterator[Running]:
        """The shaper running in the box with `spec`."""
        with tempfile.TemporaryDirectory() as workdir:
            if self.rush is None:
                engine = EngineProcess(lab, Path(workdir), spec, extra=self.extra)
                try:
                    engine.wait_ready()
                    yield Running(engine_processes(engine), engine)
                finally:
                    engine.close()
                return
            spec_path = Path(workdir) / "spec.json"
            spec_path.write_text(json.dumps(seed_view(spec)))
            profiles = (
                str(Path(workdir) / "ingress.profile"),
                str(Path(workdir) / "egress.profile"),
            )
            process = subprocess.Popen(
                lab.in_ns("box", self.rush, OUTER, INNER, str(spec_path), *profiles),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(1.0)  # it prints nothing when ready: give it the time it takes
                if process.poll() is not None:
                    raise RuntimeError(f"{self.rush} exited with {process.returncode}")
                yield Running([psutil.Process(process.pid)])  # `ip netns exec` execs: same pid
            finally:
                process.kill()
                process.wait(10)


#: linkshaper's modes in the table: its default, and the one that buys precision with CPU.
MODES = ("", "--precise")


def shapers(modes: tuple[str, ...] = MODES) -> list[Shaper]:
    found = [Shaper(f"linkshaper {mode}".strip(), tuple(mode.split())) for mode in modes]
    rush = os.environ.get(RUSH_VARIABLE)
    if rush:
        found.append(Shaper("rush (seed)", rush=rush))
    return found


def both_ways(rate: str | None, latency_ms: int, probe_link: bool = False) -> Spec:
    """`rate` and `latency_ms` each way; with `probe_link`, the probe's datagrams take a flow
    link of their own with the same latency and no rate limit, so that they measure when the
    engine releases what it holds while it shapes the rest, not the queue they would share."""
    link: dict[str, Any] = {"latency": latency_ms}
    if rate is not None:
        link["rate"] = rate
    flows = []
    if probe_link:
        # The server's address as the seed's number (its bytes in network order, read as a
        # little-endian integer): the seed's engine takes no other form.
        address = int.from_bytes(ipaddress.IPv4Address(SERVER_IP).packed, "little")
        match = {"ip": address, "protocol": 17,
                 "port_min": PROBE_PORT, "port_max": PROBE_PORT}  # fmt: skip
        latency = {"latency": latency_ms}
        flows.append({"label": "probe", "flow": match,
                      "link": {"ingress": latency, "egress": latency}})  # fmt: skip
    return Spec.model_validate({"default_link": {"ingress": link, "egress": link}, "flows": flows})
