"""Counters the engine reports, as they cross the process boundary.

Counters are cumulative since the worker started, so a reader that misses a sample loses
nothing: rates are differences between two samples divided by their `at` times.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.model.spec import Direction


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Drops(_Model):
    """Wire packets dropped, by cause: random or burst `loss`, the rate limiter's queue full,
    a `blocked` link (rate 0), a link's store of delayed packets full (`held_full`), a user's
    `flush`, `malformed` frames (a super-frame no real sender makes), the queue's AQM
    (`aqm`: CoDel, FQ-CoDel, PIE), an `outage` (one that drops what arrives) and a
    connection's `blackhole` (`blackholed`), and the segment a TCP fault (`reset`,
    `limit_data`) fired on, which its RSTs replaced (`reset`)."""

    loss: int = 0
    queue_full: int = 0
    blocked: int = 0
    held_full: int = 0
    flushed: int = 0
    malformed: int = 0
    aqm: int = 0
    outage: int = 0
    blackholed: int = 0
    reset: int = 0

    @property
    def total(self) -> int:
        return sum(self.model_dump().values())


class LinkStats(_Model):
    """One link (the default one or a flow's) in one direction. Packets are wire packets and
    bytes are Ethernet frame bytes without the framing overhead."""

    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    #: Wire packets that got through the queue and the rate limiter to the impairments (loss
    #: and the rest): what the loss set applies to, so `drops.loss` over this is the share to
    #: compare with it; the queue's drops (`queue_full`, `aqm`) never get this far.
    past_queue: int = 0
    drops: Drops = Drops()
    #: Wire packets the AQM marked CE instead of dropping them, and those netem's impairments
    #: duplicated (the copies), corrupted and sent ahead of their turn (`reorder`).
    ecn_marked: int = 0
    duplicated: int = 0
    corrupted: int = 0
    reordered: int = 0
    queue_packets: int = 0
    queue_bytes: int = 0
    queue_delay_ms: float = 0.0
    in_flight: int = 0
    #: Bytes of the frames held for latency and jitter, against `queue.held_bytes`.
    held_bytes: int = 0
    #: Connections a `blackhole` link's table (engine/core/connections.py) tracks, and those
    #: it could not take, being full (they pass unharmed).
    connections: int = 0
    connections_untracked: int = 0
    #: Wire packets a `slow_close` or `stall` held, then forwarded (marked `held`).
    held: int = 0
    #: Frames a TCP fault made (RSTs, FINs), toward either end (engine/core/tcp_faults.py).
    injected: int = 0


class Talker(_Model):
    """A far-end address and port seen on a direction, for the busiest-first table."""

    address: str
    protocol: int
    port: int
    packets: int
    bytes: int


InterfaceState = Literal["up", "down", "missing"]
#: A direction's worker process, as its supervisor sees it: reporting (`running`), silent for
#: longer than the supervisor allows and being killed (`stalled`), or being started again
#: (`restarting`, also while a restart fails and is retried).
WorkerState = Literal["running", "stalled", "restarting"]


class DirectionStats(_Model):
    direction: Direction
    at: float  # seconds, monotonic clock of the worker's host
    pid: int = 0
    #: Whether this direction forwards: both its interfaces there and up. While one is down
    #: or missing, the worker waits for it (no frames move) and `interface_problem` says why.
    interface_state: InterfaceState = "up"
    interface_problem: str = ""
    total: LinkStats = LinkStats()
    flows: dict[str, LinkStats] = {}
    #: Set by a worker whose `flows` holds only the links that changed since its last report
    #: (thousands of idle flow links cost nothing to send); the supervisor fills in the rest
    #: before anyone else sees the report.
    flows_changed_only: bool = False
    #: Frames the kernel dropped before this direction's worker read them ("engine saturated"):
    #: more came than the engine can take, and its receive buffer, sized to hold only a few ms
    #: (`engine.kernel.afpacket.RX_BUFFER_TIME`), was full. The engine's own drops, in no link's.
    engine_saturated: int = 0
    tx_errors: int = 0
    #: The kernel fast path (issue 38): whether tc's redirect forwards the direction now (it
    #: is transparent and nobody captures it), how often it switched between the kernel and
    #: the worker, the frames both forwarded in a switch's overlap, and the frames and bytes
    #: the kernel forwarded (tc's counters; the links' counters count them too).
    fast_path: bool = False
    fast_path_switches: int = 0
    fast_path_duplicates: int = 0
    kernel_forwarded: int = 0
    kernel_forwarded_bytes: int = 0
    top_talkers: list[Talker] = []
    #: What the frames released since the report before spent in the links, as measured
    #: (arrival to release: queue, rate, latency, jitter, and the release's own lateness):
    #: how many were measured, and the median and 99th percentile in ms (0 with none).
    delay_samples: int = 0
    delay_p50_ms: float = 0.0
    delay_p99_ms: float = 0.0
    #: Filled in by the supervisor: its worker's state, and how often it was found stalled
    #: (silent too long) and restarted since the engine started.
    worker_state: WorkerState = "running"
    worker_stalls: int = 0
    #: Reports (and log lines) the worker could not hand its supervisor, which was not reading:
    #: superseded by a newer report or dropped, never waited for (the worker forwards on).
    reports_dropped: int = 0


class EngineStats(_Model):
    ingress: DirectionStats | None = None
    egress: DirectionStats | None = None
