"""Counters the engine reports, as they cross the process boundary.

Counters are cumulative since the worker started, so a reader that misses a sample loses
nothing: rates are differences between two samples divided by their `at` times.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from engine.spec import Direction


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Drops(_Model):
    loss: int = 0
    queue_full: int = 0
    blocked: int = 0

    @property
    def total(self) -> int:
        return self.loss + self.queue_full + self.blocked


class LinkStats(_Model):
    """One link (the default one or a flow's) in one direction. Packets are wire packets and
    bytes are Ethernet frame bytes without the framing overhead."""

    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    drops: Drops = Drops()
    queue_packets: int = 0
    queue_bytes: int = 0
    queue_delay_ms: float = 0.0
    in_flight: int = 0


class Talker(_Model):
    """A far-end address and port seen on a direction, for the busiest-first table."""

    address: str
    protocol: int
    port: int
    packets: int
    bytes: int


class DirectionStats(_Model):
    direction: Direction
    at: float  # seconds, monotonic clock of the worker's host
    pid: int = 0
    total: LinkStats = LinkStats()
    flows: dict[str, LinkStats] = {}
    rx_kernel_drops: int = 0
    tx_errors: int = 0
    top_talkers: list[Talker] = []


class EngineStats(_Model):
    ingress: DirectionStats | None = None
    egress: DirectionStats | None = None
