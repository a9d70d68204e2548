"""What a link asks of its queue discipline."""

from __future__ import annotations

from collections.abc import Iterator

from engine.core.ecn import mark_packet
from engine.core.packet import Packet
from engine.model.impairments import QueueLimit

#: The largest wire packet (an Ethernet MTU of 1500 with its header): CoDel does not drop while
#: less than this is queued, and PIE does not while less than two of them are.
MTU_BYTES = 1514


class Discipline:
    """A queue that drops (or marks) to keep its delay down. The link queues a packet with
    `push`, takes the next one to serialise with `pop`, and collects what the discipline
    dropped (`dropped`, taken after each call) and how many wire packets it marked CE."""

    #: The spec's name for it (`queue.discipline`).
    kind = ""

    def __init__(self, queue: QueueLimit) -> None:
        self.ecn = queue.ecn
        self.dropped: list[Packet] = []
        self.marked = 0

    def configure(self, queue: QueueLimit) -> None:
        """New settings of the same discipline; what is queued and the control state stay."""
        self.ecn = queue.ecn

    def push(self, packet: Packet, now: float, queue_delay: float) -> None:
        """Queue a packet that arrived at `now`; `queue_delay` is the link's queue delay."""
        raise NotImplementedError

    def adopt(self, packet: Packet) -> None:
        """Queue a packet that was queued under another discipline, without a decision."""
        raise NotImplementedError

    def pop(self, now: float, queue_delay: float) -> Packet | None:
        """The packet the serialiser takes at `now`, or None when nothing is left to take."""
        raise NotImplementedError

    def head_arrival(self) -> float:
        """When the oldest packet queued arrived (the queue is not empty)."""
        raise NotImplementedError

    def drop_for_room(self) -> Packet | None:
        """Take out a packet to make room for an arrival over the limits, or None when the
        arrival itself is dropped (tail drop)."""
        return None

    def packets(self) -> Iterator[Packet]:
        raise NotImplementedError

    def in_arrival_order(self) -> list[Packet]:
        """Every packet queued, oldest first: what another discipline adopts on a change."""
        return sorted(self.packets(), key=lambda packet: packet.arrival)

    def clear(self) -> None:
        raise NotImplementedError

    def __bool__(self) -> bool:
        raise NotImplementedError

    def congestion_signal(self, packet: Packet) -> bool:
        """Mark the packet CE (True: it goes on) if ECN is on and it is ECN-capable;
        otherwise note it dropped (False)."""
        if self.ecn and mark_packet(packet):
            self.marked += packet.wire_packets
            return True
        self.dropped.append(packet)
        return False
