"""What the links hold: a packet (its frame and what it weighs on the wire), or a run of frames
held in bulk where the caller read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.model.spec import FRAMING_OVERHEAD

if TYPE_CHECKING:
    from engine.core.hold_faults import HoldState


@dataclass(slots=True)
class Packet:
    """A frame (vnet header included) and what it weighs on the wire."""

    frame: bytes
    arrival: float
    wire_packets: int = 1
    l2_bytes: int = 0
    droppable: bool = True
    #: When the serialiser finished it (for a capture's "queued" share of its delay).
    serialised: float = 0.0
    #: What the rate limiter counts for it, in bits: set by the link that queues it, with that
    #: link's accounting (framing, or `overhead` and cells).
    bits: int = 0
    #: With a link's `seed`: what its random decisions are drawn from (engine/core/seeded.py).
    fate_key: int = 0
    #: What the link did to it beside its fate (engine.model.fates.DUPLICATED, ...), for a
    #: capture's records: set only when it happens, so it costs nothing otherwise.
    marks: int = 0
    #: Of a connection a `slow_close` or `stall` affects: its hold state (hold_faults.py), and
    #: how much later than its due time the fault wants it to leave (0: not held itself).
    hold_by: HoldState | None = None
    hold: float = 0.0

    @property
    def wire_bits(self) -> int:
        """Its bits with the default accounting: Ethernet framing on each wire packet."""
        return (self.l2_bytes + FRAMING_OVERHEAD * self.wire_packets) * 8


@dataclass(slots=True)
class HeldRun:
    """Frames `start`..`stop`-1 of the caller's receive batch (opaque here: the frames stay
    where they were read, and the caller sends them from there), held by a link that only
    delays (`LinkSpec.delay_only`). They arrived between `first_arrival` and `last_arrival`
    and leave together once the last of them is due, so none leaves early."""

    batch: object
    start: int
    stop: int
    first_arrival: float
    last_arrival: float
    wire_packets: int
    l2_bytes: int
    #: What they count against the held-bytes limits: at least what Packets would (frames and
    #: overhead), and the memory that holding them in bulk keeps.
    held_bytes: int
