"""An engine stand-in for rendering tests: the real control hub and the real spec patcher,
served over Pipes like a hosted engine, with a fixed script of stats samples instead of
packets. Only the snapshot tests use it; everything about shaping is tested against the
real engine."""

from __future__ import annotations

import threading
import time
from multiprocessing import Pipe
from multiprocessing.connection import Connection

from engine.model.spec import Direction, Spec, SpecError
from engine.model.spec_patch import patch_spec
from engine.model.stats import DirectionStats, Drops, LinkStats, Talker
from engine.protocol.control_server import ControlServer
from engine.protocol.messages import (
    Error,
    GetInfo,
    GetSpec,
    Info,
    Message,
    PatchSpec,
    SetSpec,
    SpecChanged,
    SpecReply,
    StatsReport,
    Subscribe,
)


def _sample(i: int, rate: float, loss_every: int, direction: Direction) -> DirectionStats:
    swing = (i % 10) / 10
    bytes_out = int(rate / 8 * 0.1 * i)
    drops = Drops(loss=i // loss_every if loss_every else 0, queue_full=i // 7)
    total = LinkStats(
        packets_in=bytes_out // 1000, bytes_in=int(bytes_out * 1.05),
        packets_out=bytes_out // 1000, bytes_out=bytes_out, drops=drops,
        past_queue=bytes_out // 1000 + drops.loss,
        queue_packets=int(20 + 10 * swing), queue_delay_ms=12.5 + 5 * swing,
    )  # fmt: skip
    web = LinkStats(bytes_out=bytes_out // 4, bytes_in=bytes_out // 4)
    talkers = [
        Talker(address="198.18.0.2", protocol=6, port=443, packets=i * 80, bytes=bytes_out // 2),
        Talker(address="198.18.0.2", protocol=17, port=3478, packets=i * 10, bytes=bytes_out // 8),
    ]
    # What the engine measured: the snapshot spec's 40 ms, plus jitter on the download.
    p50, p99 = (45.2 + swing, 57.9 + 2 * swing) if loss_every else (40.3, 41.0 + swing)
    return DirectionStats(
        direction=direction, at=100.0 + i * 0.1, pid=7, total=total, flows={"web": web},
        top_talkers=talkers, delay_samples=50, delay_p50_ms=p50, delay_p99_ms=p99,
    )  # fmt: skip


def script(samples: int = 40) -> list[DirectionStats]:
    """Ten samples a second: a download near 18 Mbit/s with some loss, an upload at 5."""
    out: list[DirectionStats] = []
    for i in range(samples):
        out.append(_sample(i, 18e6, 3, "ingress"))
        out.append(_sample(i, 5e6, 0, "egress"))
    return out


class ScriptedEngine:
    """An EngineSource for `create_app`."""

    description = "scripted engine (tests)"
    reconnects = False
    control_path: str | None = None  # no socket: no packets view

    def __init__(self, spec: Spec, samples: int = 40) -> None:
        self.spec = spec
        self.samples = script(samples)
        self.received: list[Spec] = []
        self.hub = ControlServer(None, self._handle)

    def open(self) -> tuple[Connection, Connection]:
        ours_requests, theirs_requests = Pipe()
        ours_events, theirs_events = Pipe()
        self.hub.serve(theirs_requests)
        self.hub.serve(theirs_events)
        return ours_requests, ours_events

    def _handle(self, request: Message) -> Message:
        if isinstance(request, GetInfo):
            return Info(outer="eth0", inner="veth-app", supervisor_pid=0, worker_pids={},
                        spec_path=None, control_path=None)  # fmt: skip
        if isinstance(request, GetSpec):
            return SpecReply(spec=self.spec)
        if isinstance(request, Subscribe):
            threading.Timer(0.2, self._play).start()
            return SpecReply(spec=self.spec)
        if isinstance(request, SetSpec | PatchSpec):
            try:
                spec = (
                    request.spec
                    if isinstance(request, SetSpec)
                    else patch_spec(self.spec, request.changes)
                )
            except SpecError as exc:
                return Error(message=str(exc))
            self.spec = spec
            self.received.append(spec)
            self.hub.publish(SpecChanged(spec=spec, source=request.source, at=0.0))
            return SpecReply(spec=spec)
        return Error(message=f"not scripted: {request.type}")

    def _play(self) -> None:
        # The hub registers the subscriber only after its reply has gone out: on a busy
        # machine that can take longer than the timer, and samples published before would
        # reach nobody.
        deadline = time.monotonic() + 10.0
        while self.hub.watchers == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        for sample in self.samples:
            self.hub.publish(StatsReport(stats=sample))

    def close(self) -> None:
        # Ends the subscription (its sender thread closes that pipe); the request pipe's
        # thread ends when the app closes its side. Nothing here closes a pipe another
        # thread is using.
        self.hub.close()

    def explain(self) -> str:
        return ""
