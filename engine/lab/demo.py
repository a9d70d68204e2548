"""The demo: a lab, an engine in its box, and steady iperf3 traffic both ways.

`DemoLab` is what `tui --demo` opens its UI on; `run_demo` is the headless variant that prints
counters. Everything either starts is bounded in time and removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time

from engine.kernel.processes import stop_process
from engine.lab.lab import CLIENT_IP, SERVER_IP, Lab
from engine.model.rates import direction_rates
from engine.model.spec import DIRECTIONS, Direction, Spec
from engine.model.stalls import StallWatch
from engine.model.stats import DirectionStats
from engine.model.units import format_rate
from engine.protocol.client import ControlClient, wait_for_engine
from engine.protocol.control import ControlError
from engine.protocol.messages import StatsReport

DEMO_SPEC = Spec.model_validate(
    {
        "default_link": {
            "ingress": {"rate": "20mbit", "latency": "20ms"},
            "egress": {"rate": "5mbit", "latency": "20ms"},
        }
    }
)

#: Each direction's offered load: visible at any setting, and light on a 2-core machine even
#: when the link is set to pass-through.
DEMO_OFFERED = "40M"
DOWNLOAD_PORT, UPLOAD_PORT = "5201", "5202"
#: Who sends each direction's flow, who receives it, and the receiver's address. The sender
#: is always the iperf3 client: `-b` alone aims at an average since the start, so after a
#: throttled period it sent at Gbit/s to catch up; `--fq-rate` (socket pacing) caps it at the
#: rate, and iperf3 applies it only on the client's side (not to a `-R` server's sending).
_ROLES = {
    DOWNLOAD_PORT: ("server", "client", CLIENT_IP),
    UPLOAD_PORT: ("client", "server", SERVER_IP),
}
#: A direction that stands still this long after an extreme setting ended (TCP backing off:
#: engine/model/stalls.py) has its flows started again: new connections send at once, where
#: the old ones could wait a minute or two. At most once per RESTART_GAP.
STALL_RESTART = 2.0
RESTART_GAP = 10.0


class DemoLab:
    """A lab with an engine and traffic, for `with`. Clients that end early (a blocked link
    can time iperf3 out) are started again until `seconds` have passed, and so are clients
    that stand still after an extreme setting ended (TCP backing off: see `_stalled`)."""

    def __init__(self, lab: Lab, spec: Spec = DEMO_SPEC, seconds: float = 3600.0) -> None:
        self.lab = lab
        self.spec = spec
        self.seconds = seconds
        # Named by the lab's prefix: with several demos on a machine, a user finds theirs
        # (`ls /tmp/linkshaper-demo-PREFIX-*/control.sock`).
        self.workdir = tempfile.mkdtemp(prefix=f"linkshaper-demo-{lab.prefix}-")
        self.control = os.path.join(self.workdir, "control.sock")
        self.spec_path = os.path.join(self.workdir, "spec.json")
        self.engine: subprocess.Popen[bytes] | None = None
        self._servers: list[subprocess.Popen[bytes]] = []
        self._clients: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None
        self.deadline = 0.0
        self._stalls = {d: StallWatch() for d in DIRECTIONS}
        self._last: dict[Direction, DirectionStats] = {}
        self._still_since: float | None = None
        self._restarted_at = float("-inf")
        #: How many times the flows were started again after a stand-still (for tests).
        self.restarts = 0

    def __enter__(self) -> DemoLab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> None:
        with open(self.spec_path, "w") as handle:
            handle.write(self.spec.to_json())
        self.lab.up()
        with open(os.path.join(self.workdir, "engine.log"), "wb") as log:
            engine = subprocess.Popen(
                self.lab.engine_command(self.spec_path, self.control),
                stdout=subprocess.DEVNULL,
                stderr=log,  # the child has its own copy: ours is closed at once
            )
        self.engine = engine
        # Workers report within a second here, but up to 10 s and more on a loaded machine.
        wait_for_engine(self.control, timeout=30.0, alive=lambda: engine.poll() is None)
        for port in (DOWNLOAD_PORT, UPLOAD_PORT):
            receiver = _ROLES[port][1]
            self._servers.append(
                subprocess.Popen(
                    self.lab.in_ns(receiver, "iperf3", "-s", "-p", port),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(0.3)
        self.deadline = time.monotonic() + self.seconds
        self._keeper = threading.Thread(target=self._keep_traffic, daemon=True, name="demo")
        self._keeper.start()

    def _client(self, port: str) -> subprocess.Popen[bytes]:
        left = max(1, int(self.deadline - time.monotonic()))
        sender, _, target = _ROLES[port]
        command = self.lab.in_ns(
            sender,
            "iperf3", "-c", target, "-p", port, "-t", str(left), "-b", DEMO_OFFERED,
            "--fq-rate", DEMO_OFFERED,
        )  # fmt: skip
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _keep_traffic(self) -> None:
        client: ControlClient | None = None
        while not self._stopping.is_set() and time.monotonic() < self.deadline:
            try:
                client = client or ControlClient(self.control)
                stalled = self._stalled(client)
            except ControlError:  # the engine went away (the demo ends) or is restarting
                if client is not None:
                    client.close()
                client, stalled = None, False
            if stalled:
                for process in self._clients.values():
                    stop_process(process, 3)
                self.restarts += 1
            for port in (DOWNLOAD_PORT, UPLOAD_PORT):
                running = self._clients.get(port)
                if running is None or running.poll() is not None:
                    self._clients[port] = self._client(port)
            self._stopping.wait(1.0)
        if client is not None:
            client.close()

    def _stalled(self, client: ControlClient) -> bool:
        """Whether a direction has stood still for STALL_RESTART after an extreme setting
        ended (and the flows were not restarted within RESTART_GAP)."""
        spec, stats = client.get_spec(), client.stats()
        still = False
        for direction in DIRECTIONS:
            current = stats.ingress if direction == "ingress" else stats.egress
            if current is None:
                continue
            watch = self._stalls[direction]
            watch.settings(spec.link(direction), current.at)
            rates = direction_rates(self._last.get(direction), current)
            if direction in self._last and watch.still(current.at, rates.packets_in):
                still = True
            self._last[direction] = current
        now = time.monotonic()
        if not still:
            self._still_since = None
            return False
        if self._still_since is None:
            self._still_since = now
        if now - self._still_since < STALL_RESTART or now - self._restarted_at < RESTART_GAP:
            return False
        self._restarted_at, self._still_since = now, None
        return True

    def close(self) -> None:
        self._stopping.set()
        if self._keeper is not None:
            self._keeper.join(5)
        for process in [*self._clients.values(), *self._servers]:
            stop_process(process, 3)
        if self.engine is not None:
            stop_process(self.engine, 3)
        self.lab.down()
        shutil.rmtree(self.workdir, ignore_errors=True)


def run_demo(lab: Lab, seconds: float) -> int:
    """Headless: the demo's counters printed once a second per direction."""
    with DemoLab(lab, seconds=seconds) as demo:
        print(
            f"Shaping the lab for {int(seconds)} s: download 20 Mbit/s, upload 5 Mbit/s, "
            f"20 ms each way. Try: linkshaper set --control {demo.control} ingress.rate=2mbit"
        )
        deadline = time.monotonic() + seconds
        previous: dict[str, DirectionStats] = {}
        with ControlClient(demo.control) as client:
            for message in client.subscribe():
                if time.monotonic() > deadline:
                    break
                if not isinstance(message, StatsReport):
                    continue
                stats = message.stats
                before = previous.get(stats.direction)
                if before is None or stats.at - before.at >= 1.0:
                    rates = direction_rates(before, stats)
                    drops = stats.total.drops
                    print(
                        f"{stats.direction:7} {format_rate(rates.bits_out):>13}  "
                        f"drops loss={drops.loss} queue={drops.queue_full}",
                        flush=True,
                    )
                    previous[stats.direction] = stats
    return 0
