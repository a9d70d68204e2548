"""The headless demo: a lab, an engine in its box, iperf3 both ways, live counters printed.

Everything it starts is bounded in time and removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable

from engine.client import ControlClient
from engine.control import ControlError
from engine.lab import SERVER_IP, Lab
from engine.protocol import StatsReport
from engine.spec import Spec
from engine.units import format_rate

DEMO_SPEC = Spec.model_validate(
    {
        "default_link": {
            "ingress": {"rate": "20mbit", "latency": "20ms", "loss": 0.001},
            "egress": {"rate": "5mbit", "latency": "20ms"},
        }
    }
)


def wait_for_engine(
    control: str, timeout: float = 10.0, alive: Callable[[], bool] = lambda: True
) -> None:
    """Until both workers have reported stats over `control`; `alive` says whether to go on."""
    deadline = time.monotonic() + timeout
    while True:
        if not alive():
            raise ControlError("the engine exited")
        try:
            with ControlClient(control) as client:
                stats = client.stats()
                if stats.ingress is not None and stats.egress is not None:
                    return
        except ControlError:
            pass
        if time.monotonic() > deadline:
            raise ControlError(f"the engine did not come up on {control}")
        time.sleep(0.05)


def run_demo(lab: Lab, seconds: float) -> int:
    workdir = tempfile.mkdtemp(prefix="linkshaper-demo-")
    spec_path = os.path.join(workdir, "spec.json")
    control = os.path.join(workdir, "control.sock")
    with open(spec_path, "w") as handle:
        handle.write(DEMO_SPEC.to_json())
    processes: list[subprocess.Popen[bytes]] = []
    lab.up()
    try:
        engine = subprocess.Popen(lab.engine_command(spec_path, control))
        processes.append(engine)
        wait_for_engine(control)
        duration = str(int(seconds))
        for port in ("5201", "5202"):
            processes.append(
                subprocess.Popen(
                    lab.in_ns("server", "iperf3", "-s", "-1", "-p", port),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(0.5)
        for port, extra in (("5201", []), ("5202", ["-R"])):
            processes.append(
                subprocess.Popen(
                    lab.in_ns(
                        "client", "iperf3", "-c", SERVER_IP, "-p", port, "-t", duration, *extra
                    ),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        print(
            f"Shaping the lab for {duration} s: download 20 Mbit/s, upload 5 Mbit/s, "
            f"20 ms each way. Try: linkshaper set --control {control} ingress.rate=2mbit"
        )
        deadline = time.monotonic() + seconds
        previous: dict[str, tuple[float, int]] = {}
        with ControlClient(control) as client:
            for message in client.subscribe():
                if time.monotonic() > deadline:
                    break
                if not isinstance(message, StatsReport):
                    continue
                stats = message.stats
                at, sent = previous.get(stats.direction, (0.0, 0))
                if stats.at - at >= 1.0:
                    rate = (stats.total.bytes_out - sent) * 8 / (stats.at - at) if at else 0.0
                    drops = stats.total.drops
                    print(
                        f"{stats.direction:7} {format_rate(rate):>13}  "
                        f"drops loss={drops.loss} queue={drops.queue_full}",
                        flush=True,
                    )
                    previous[stats.direction] = (stats.at, stats.total.bytes_out)
        return 0
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(3)
                except subprocess.TimeoutExpired:
                    process.kill()
        lab.down()
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)
