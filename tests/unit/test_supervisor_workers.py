"""The supervisor with its two real worker processes, without interfaces or root: each
direction's worker is handed Unix datagram socket pairs (passed across `spawn`). A change
made through the supervisor reaches the right worker, and its stats come back complete."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.daemon.config import EngineConfig, GivenPorts
from engine.daemon.supervisor import Supervisor
from engine.kernel.afpacket import limit_blocking_reads
from engine.model.spec import Direction, parse_spec
from engine.model.stats import EngineStats
from engine.protocol.messages import GetStats, PatchSpec, SpecReply, StatsReply
from engine.timelines.recorder import TimelineRecorder
from tests.frames_helpers import udp_frame

HANG = 15.0


@dataclass
class Wire:
    """One direction: frames go in at `inlet` and come out at `outlet`."""

    inlet: socket.socket
    outlet: socket.socket

    def passes(self, frame: bytes, wait: float = 0.5) -> bool:
        """Whether `frame` comes out within `wait` (frames sent earlier that come out late
        are passed over)."""
        self.inlet.send(frame)
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            self.outlet.settimeout(left)
            try:
                if self.outlet.recv(70_000) == frame:
                    return True
            except TimeoutError:
                break
        return False


@contextmanager
def supervised(
    spec: dict[str, object], recorder: TimelineRecorder | None = None
) -> Iterator[tuple[Supervisor, dict[Direction, Wire]]]:
    wires: dict[Direction, Wire] = {}
    given: dict[Direction, tuple[socket.socket, socket.socket]] = {}
    mine: list[socket.socket] = []
    for direction in ("ingress", "egress"):
        inlet, rx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        tx, outlet = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        limit_blocking_reads(rx)
        rx.setblocking(False)
        wires[direction] = Wire(inlet, outlet)
        given[direction] = (rx, tx)
        mine += [inlet, rx, tx, outlet]
    config = EngineConfig("outer0", "inner0", ports=GivenPorts(given))
    supervisor = Supervisor(config, parse_spec(spec), recorder=recorder)
    supervisor.start()
    loop = threading.Thread(target=supervisor.run, daemon=True)
    loop.start()
    try:
        yield supervisor, wires
    finally:
        supervisor.stop()
        loop.join(HANG)
        for sock in mine:
            sock.close()
    assert not loop.is_alive()


def stats_until(supervisor: Supervisor, done: object) -> EngineStats:
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        reply = supervisor.handle(GetStats())
        assert isinstance(reply, StatsReply)
        if done(reply.stats):  # type: ignore[operator]
            return reply.stats
        time.sleep(0.05)
    raise AssertionError("no such stats")


def test_both_directions_forward_and_report() -> None:
    frame = udp_frame()
    with supervised({}) as (supervisor, wires):
        for _ in range(3):
            assert wires["ingress"].passes(frame, HANG)
        assert wires["egress"].passes(frame, HANG)
        stats = stats_until(
            supervisor,
            lambda s: s.ingress is not None and s.egress is not None
            and s.ingress.total.packets_out == 3 and s.egress.total.packets_out == 1,
        )  # fmt: skip
        assert stats.ingress is not None and stats.ingress.pid != stats.egress.pid  # type: ignore[union-attr]


def test_a_patch_reaches_only_its_direction() -> None:
    frame = udp_frame()
    with supervised({}) as (supervisor, wires):
        assert wires["egress"].passes(udp_frame(sport=1), HANG)  # its worker is up
        reply = supervisor.handle(PatchSpec(changes={"egress.loss": 1.0}, source="test"))
        assert isinstance(reply, SpecReply) and reply.spec.default_link.egress.loss == 1.0
        # It applies once the worker has read it (nothing says when): then from then on.
        for n in range(20):
            if not wires["egress"].passes(udp_frame(sport=100 + n)):
                break
        else:
            raise AssertionError("the patch never applied")
        assert not any(wires["egress"].passes(frame, 0.2) for _ in range(5))
        assert all(wires["ingress"].passes(frame, HANG) for _ in range(5))
        stats = stats_until(
            supervisor, lambda s: s.egress is not None and s.egress.total.drops.loss >= 6
        )
        assert stats.ingress is not None and stats.ingress.total.drops.loss == 0


def test_stats_asked_for_count_every_frame_sent_before_the_question() -> None:
    """Nobody watching, workers report once a second, traffic or not; a client that asks
    gets figures made after its question (the workers report at once), so a script that sent
    a frame and asks finds it counted, every time."""
    with supervised({}) as (supervisor, wires):
        for n in range(1, 8):
            assert wires["egress"].passes(udp_frame(sport=n), HANG)
            reply = supervisor.handle(GetStats())
            assert isinstance(reply, StatsReply) and reply.stats.egress is not None
            assert reply.stats.egress.total.packets_out == n


def test_a_recorder_watches_from_the_start_so_workers_report_ten_a_second(tmp_path: Path) -> None:
    """Nobody else watching and nothing asked: a recorder of stats still gets the fast pace
    (ten a second, not one), from the first report on."""
    path = tmp_path / "run.timeline"
    recorder = TimelineRecorder(path, stats=True, stats_interval=0.0)
    with supervised({}, recorder) as (_, wires):
        assert wires["egress"].passes(udp_frame(), HANG)  # its worker is up
        time.sleep(2.0)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    egress = [line for line in lines if line.get("stats", {}).get("direction") == "egress"]
    assert len(egress) >= 8, len(egress)  # once a second would be three at the most
