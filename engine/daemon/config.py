"""What an engine is told at start, in one object handed whole: the command line builds an
`EngineConfig`, the supervisor keeps it, and each worker gets its direction's `WorkerConfig`
(a copy sent to its process, so it must pickle). Where a worker's frames come from is a
`Ports` factory in it: the interfaces' packet sockets in production, socket pairs in tests.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from engine.kernel.afpacket import open_receiver, open_sender
from engine.kernel.realtime import REALTIME_FIX, REALTIME_PRIORITY, realtime_refusal
from engine.model.interface_names import check_interface_name
from engine.model.spec import Direction

log = logging.getLogger("linkshaper")


class Ports(Protocol):
    """Opens a worker's receiver and sender."""

    @property
    def packet(self) -> bool:
        """Whether these are the interfaces' own packet sockets: then the engine brings the
        interfaces up, reopens the sockets when an interface comes back, and counts the
        kernel's drops. Given sockets are used as they are and never reopened."""
        ...

    def open(
        self, direction: Direction, rx_ifname: str, tx_ifname: str
    ) -> tuple[socket.socket, socket.socket]:
        """The receiver on `rx_ifname` and the sender on `tx_ifname`; OSError if not."""
        ...

    def of(self, direction: Direction) -> Ports:
        """What one direction's worker needs of these, and no more (a worker's process holds
        whatever it is handed)."""
        ...


@dataclass(frozen=True)
class PacketPorts:
    """The interfaces' packet sockets, opened by name (an interface made again has a new
    index, so a name is what survives)."""

    packet: bool = True

    def open(
        self, direction: Direction, rx_ifname: str, tx_ifname: str
    ) -> tuple[socket.socket, socket.socket]:
        rx = open_receiver(rx_ifname)
        try:
            tx = open_sender(tx_ifname)
        except OSError:
            rx.close()
            raise
        return rx, tx

    def of(self, direction: Direction) -> PacketPorts:
        return self


@dataclass(frozen=True)
class GivenPorts:
    """Sockets handed in for each direction (tests over socket pairs): the receiver a worker
    reads and the sender it writes, instead of the interfaces."""

    sockets: Mapping[Direction, tuple[socket.socket, socket.socket]]
    packet: bool = False

    def open(
        self, direction: Direction, rx_ifname: str, tx_ifname: str
    ) -> tuple[socket.socket, socket.socket]:
        return self.sockets[direction]

    def of(self, direction: Direction) -> GivenPorts:
        """Only `direction`'s pair: the other worker's sockets stay out of this one's process."""
        return GivenPorts({d: pair for d, pair in self.sockets.items() if d == direction})


@dataclass(frozen=True)
class WorkerConfig:
    """One direction's worker: frames from `rx_ifname` to `tx_ifname`."""

    direction: Direction
    rx_ifname: str
    tx_ifname: str
    #: Whether it polls, for sparse frames and before releases (`run --precise`).
    precise: bool = False
    #: Frames to or from this port skip shaping (`run --unshaped-port`, see DirectionPipeline).
    unshaped_port: int | None = None
    ports: Ports = field(default_factory=PacketPorts)
    #: Whether it runs at SCHED_FIFO (`run --realtime`; see engine/kernel/realtime.py).
    realtime: bool = False
    #: Whether the kernel forwards the direction while it is transparent (not with
    #: `run --no-fast-path`; see engine/core/fast_path.py).
    fast_path: bool = True


@dataclass(frozen=True)
class EngineConfig:
    """The engine between `outer` (the network side) and `inner` (the application side)."""

    outer: str
    inner: str
    #: The spec file: read at start and on SIGHUP, and written on every change if `persist`.
    spec_path: str | None = None
    #: Where the control socket listens (none: only pipes handed to `serve`).
    control_path: str | None = None
    precise: bool = False
    persist: bool = True
    #: The ingress and egress traffic profile files (the seed's flowtop), or none.
    profiles: tuple[str, str] | None = None
    unshaped_port: int | None = None
    ports: Ports = field(default_factory=PacketPorts)
    #: The workers at a real-time priority where this process may (`run --realtime`); where
    #: not, the engine says so once and runs them as without it.
    realtime: bool = False
    #: tc's redirect forwards a transparent direction (see WorkerConfig.fast_path).
    fast_path: bool = True

    def __post_init__(self) -> None:
        """Every engine, whoever starts it, refuses a name the kernel would cut short."""
        check_interface_name(self.outer, "OUTER")
        check_interface_name(self.inner, "INNER")

    def worker(self, direction: Direction) -> WorkerConfig:
        """Ingress runs from outer to inner, egress from inner to outer."""
        rx, tx = (self.outer, self.inner) if direction == "ingress" else (self.inner, self.outer)
        ports = self.ports.of(direction)
        # Profile files count every frame, as the seed's do (scripts measure delivered
        # throughput from them): the kernel's fast path, which shows the engine a sample, is
        # not taken while they are written.
        fast_path = self.fast_path and self.profiles is None
        return WorkerConfig(
            direction, rx, tx, self.precise, self.unshaped_port, ports, self.realtime, fast_path
        )  # fmt: skip


def with_realtime_checked(config: EngineConfig) -> EngineConfig:
    """`config` as the workers get it: with `realtime` only if this process may use a real-time
    policy; where not, one warning saying why and what gives it, and the workers run as
    without the option."""
    if not config.realtime:
        return config
    refusal = realtime_refusal()
    if refusal is None:
        log.info("--realtime: workers run at SCHED_FIFO, priority %d", REALTIME_PRIORITY)
        return config
    log.warning("--realtime: not allowed here (%s), the workers run at the ordinary priority; "
                "to allow it, %s", refusal, REALTIME_FIX)  # fmt: skip
    return dataclasses.replace(config, realtime=False)
