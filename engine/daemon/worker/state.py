"""What a forwarder's rooms share: its direction and interfaces, its pipeline, its sockets, and
the notes it has for the supervisor's log. Each room (sender, intake, wait strategies, the
supervisor's side, the interfaces) is a class over this state, and `Forwarder` is all of them:
the frame path stays in plain method calls on one object, at no cost per frame.
"""

from __future__ import annotations

import socket
import time
from typing import Literal

from engine.core.pipeline import DirectionPipeline
from engine.daemon.config import Ports
from engine.kernel.mmsg import FrameBatch
from engine.model.spec import Direction
from engine.model.stats import InterfaceState
from engine.protocol.messages import WorkerNote


class ForwarderState:
    """The state every room of a `Forwarder` reads (set up by `Forwarder.__init__`)."""

    direction: Direction
    rx_ifname: str
    tx_ifname: str
    ports: Ports
    pipeline: DirectionPipeline
    rx: socket.socket
    tx: socket.socket
    #: Whether the receiver stamps arrivals (see `Intake.follow_spec`).
    stamped: bool
    #: Whether to poll, for sparse frames and before releases (`run --precise`).
    precise: bool
    #: Where the next frames are read; a link that only delays may keep it (see
    #: `Intake._hold_batch`), and then another takes its place, from the spares if any.
    _batch: FrameBatch
    _spares: list[FrameBatch]
    #: The wall clock (the kernel's stamps) less the monotonic one (the pipeline's), in
    #: nanoseconds (see `wall_offset_now`).
    _wall_offset: int
    #: "up" while forwarding; else why not (see `Interfaces.wait_for_interfaces`).
    interface_state: InterfaceState
    interface_problem: str
    #: Whether tc's redirect forwards this direction's frames now (the fast path): then the
    #: worker reads and counts them but sends none (see `engine.daemon.worker.fast_path`).
    kernel_forwards: bool
    #: The frames and bytes (Ethernet header on) of the sample read meanwhile, which the
    #: links counted: tc's counters less these are what the kernel forwarded unseen.
    sampled_frames: int
    sampled_bytes: int
    #: Log lines for the supervisor, sent with the next stats (see `Sender._send_again`).
    notes: list[WorkerNote]

    def note(self, level: Literal["info", "warning"], message: str) -> None:
        """A line for the engine's log, sent up with the next stats."""
        self.notes.append(WorkerNote(direction=self.direction, level=level, message=message))


def wall_offset_now() -> int:
    """The wall clock less the monotonic one, in nanoseconds, read in that order: the later
    monotonic reading makes the offset too small if anything, so an arrival worked out from a
    stamp with it is late if anything, never early."""
    wall = time.time_ns()
    return wall - time.monotonic_ns()
