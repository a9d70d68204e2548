"""A packet as the links hold it: the frame and what it weighs on the wire."""

from __future__ import annotations

from dataclasses import dataclass

from engine.model.spec import FRAMING_OVERHEAD


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

    @property
    def wire_bits(self) -> int:
        """Its bits with the default accounting: Ethernet framing on each wire packet."""
        return (self.l2_bytes + FRAMING_OVERHEAD * self.wire_packets) * 8
