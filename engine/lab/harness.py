"""Running the real engine in a real lab and measuring what comes through, for end-to-end
tests and benchmarks (shipped in the package, as pyroute2 ships its fixtures, so that `bench/`
and a user's own tests can use it): an engine process, background processes, ping, iperf3, the
UDP probe, and the checks that a configured delay holds.

Everything started here is stopped in `close()`, which the fixtures call also when a test
fails; the lab's namespaces are deleted with every process still inside them.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from engine.kernel.processes import stop_process
from engine.kernel.python_path import python_module_command
from engine.lab.lab import SERVER_IP, Lab
from engine.model.spec import Spec
from engine.protocol.client import ControlClient, wait_for_engine
from engine.protocol.control import ControlError


class EngineProcess:
    """`linkshaper run outer inner SPEC --control PATH` inside the lab's box."""

    def __init__(
        self,
        lab: Lab,
        workdir: Path,
        spec: Spec | dict[str, Any] | None,
        spec_name: str = "spec.json",
        extra: tuple[str, ...] = (),
        profiles: tuple[str, str] | None = None,
        wrapper: tuple[str, ...] = (),
    ) -> None:
        """`wrapper`: a command that runs the engine's (`setpriv ...` to take a privilege)."""
        self.lab = lab
        self.spec_path = workdir / spec_name
        self.control = str(workdir / "control.sock")
        self.stderr_path = workdir / "engine.stderr"
        if spec is not None:
            data = spec.model_dump(mode="json") if isinstance(spec, Spec) else spec
            self.spec_path.write_text(json.dumps(data))
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in close()
        command = lab.engine_command(str(self.spec_path), self.control, *extra, profiles=profiles)
        self.process = subprocess.Popen([*wrapper, *command], stderr=self._stderr)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until both workers report; 30 s at most (a busy 2-core machine starts three
        interpreters slowly; the wait ends as soon as they are up)."""
        try:
            wait_for_engine(self.control, timeout, alive=lambda: self.process.poll() is None)
        except ControlError as exc:
            raise RuntimeError(f"{exc}: {self.stderr()}") from None

    def client(self) -> ControlClient:
        return ControlClient(self.control)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def close(self) -> None:
        stop_process(self.process)
        self._stderr.close()


class Background:
    """Processes in the lab that the test stops (or that stop themselves)."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, args: list[str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(5)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


def wire_packets(lab: Lab, role: str, way: str) -> int:
    """The kernel's packet counter (`way`: rx or tx) of a lab host's interface."""
    counter = f"/sys/class/net/eth0/statistics/{way}_packets"
    return int(lab.run(role, "cat", counter).stdout)


def ping_rtts(
    lab: Lab, count: int = 20, interval: float = 0.05, v6: bool = False, target: str = SERVER_IP
) -> list[float]:
    args = ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "2"]
    if v6:
        args.append("-6")
    result = lab.run("client", *args, target, check=False)
    return ping_times(result.stdout)


def ping_times(output: str) -> list[float]:
    """The round-trip times (ms) in ping's output, one per reply."""
    return [float(m) for m in re.findall(r"time=([0-9.]+) ms", output)]


def median(values: list[float]) -> float:
    return statistics.median(values)


#: ping prints times of 10 ms and more with one decimal.
PING_RESOLUTION_MS = 0.1


def lower_quartile(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 4]


def assert_delay(rtts: list[float], expected_ms: float, tolerance_ms: float = 2.0) -> None:
    """A configured delay is a floor that no packet may beat, and the typical packet sits within
    `tolerance_ms` above it: by default 1 ms for each of a round trip's two crossings of the
    engine. Typical is the lower quartile, not the median: on a shared CI machine, scheduling
    noise only ever adds delay, and it adds it to a few pings at a time."""
    assert len(rtts) >= 4, rtts
    assert min(rtts) >= expected_ms - PING_RESOLUTION_MS, (expected_ms, rtts)
    assert lower_quartile(rtts) <= expected_ms + tolerance_ms, (expected_ms, rtts)


def probe(lab: Lab, role: str, *args: str) -> list[str]:
    return lab.in_ns(role, *python_module_command("engine.lab.udp_probe", *args))


def iperf3(
    lab: Lab,
    seconds: int = 5,
    reverse: bool = False,
    port: int = 5201,
    omit: int = 1,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One run (TCP unless `extra` says -u) to the lab's server; returns iperf3's JSON."""
    server = subprocess.Popen(
        lab.in_ns("server", "iperf3", "-s", "-1", "-p", str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        args = [
            "iperf3",
            "-c",
            SERVER_IP,
            "-p",
            str(port),
            "-t",
            str(seconds),
            "-O",
            str(omit),
            "-J",
        ]
        if reverse:
            args.append("-R")
        args.extend(extra)
        result = lab.run("client", *args, check=False)
        data: dict[str, Any] = json.loads(result.stdout)
        return data
    finally:
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def received_bits_per_second(report: dict[str, Any]) -> float:
    return float(report["end"]["sum_received"]["bits_per_second"])


def is_root() -> bool:
    return os.geteuid() == 0
