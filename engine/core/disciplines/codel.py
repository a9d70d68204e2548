"""CoDel (RFC 8289): drop at dequeue when the queue's delay has stayed above `target` for an
`interval`, then ever more often (the control law: the n-th drop `interval / sqrt(n)` after
the one before) until it is below again. As Linux's codel, with ECN a packet that would be
dropped is marked CE instead and leaves."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator

from engine.core.disciplines.base import MTU_BYTES, Discipline
from engine.core.packet import Packet
from engine.model.impairments import QueueLimit


def control_law(t: float, interval: float, count: int) -> float:
    """When the next drop is due after one at `t`, the `count`-th of a dropping spell."""
    return t + interval / math.sqrt(count)


class FlowQueue:
    """A FIFO and its CoDel state (one for codel, one per flow for fq_codel)."""

    __slots__ = (
        "backlog",
        "count",
        "deficit",
        "drop_next",
        "dropping",
        "first_above_time",
        "index",
        "lastcount",
        "listed",
        "queue",
    )

    def __init__(self) -> None:
        self.queue: deque[Packet] = deque()
        self.backlog = 0  # bytes queued
        self.first_above_time: float | None = None
        self.drop_next = 0.0
        self.count = 0
        self.lastcount = 0
        self.dropping = False
        self.deficit = 0  # for fq_codel's round robin
        self.listed = False  # in fq_codel's new or old list
        self.index = 0  # fq_codel's bucket

    def append(self, packet: Packet) -> None:
        self.queue.append(packet)
        self.backlog += packet.l2_bytes

    def _take(self) -> Packet | None:
        if not self.queue:
            return None
        packet = self.queue.popleft()
        self.backlog -= packet.l2_bytes
        return packet

    def _should_drop(self, packet: Packet | None, now: float, target: float,
                     interval: float) -> bool:  # fmt: skip
        if packet is None:
            self.first_above_time = None
            return False
        if now - packet.arrival < target or self.backlog <= MTU_BYTES:
            self.first_above_time = None
            return False
        if self.first_above_time is None:
            self.first_above_time = now + interval
            return False
        return now >= self.first_above_time

    def dequeue(self, now: float, target: float, interval: float,
                owner: Discipline) -> Packet | None:  # fmt: skip
        """CoDel's dequeue at `now`: the packet that leaves (perhaps marked CE), after those
        dropped (handed to `owner.congestion_signal`)."""
        packet = self._take()
        drop = self._should_drop(packet, now, target, interval)
        if packet is None:
            self.dropping = False
            return None
        if self.dropping:
            if not drop:
                self.dropping = False
            while self.dropping and now >= self.drop_next:
                assert packet is not None
                self.count += 1
                if owner.congestion_signal(packet):
                    self.drop_next = control_law(self.drop_next, interval, self.count)
                    return packet
                packet = self._take()
                if not self._should_drop(packet, now, target, interval):
                    self.dropping = False
                else:
                    self.drop_next = control_law(self.drop_next, interval, self.count)
        elif drop:
            if not owner.congestion_signal(packet):
                packet = self._take()
                self._should_drop(packet, now, target, interval)
            self.dropping = True
            delta = self.count - self.lastcount
            if delta > 1 and now - self.drop_next < 16 * interval:
                self.count = delta
            else:
                self.count = 1
            self.lastcount = self.count
            self.drop_next = control_law(now, interval, self.count)
        return packet


class CodelQueue(Discipline):
    kind = "codel"

    def __init__(self, queue: QueueLimit) -> None:
        super().__init__(queue)
        self.flow = FlowQueue()
        self.configure(queue)

    def configure(self, queue: QueueLimit) -> None:
        super().configure(queue)
        self.target = queue.setting("target") / 1000.0
        self.interval = queue.setting("interval") / 1000.0

    def push(self, packet: Packet, now: float, queue_delay: float) -> None:
        self.flow.append(packet)

    def adopt(self, packet: Packet) -> None:
        self.flow.append(packet)

    def pop(self, now: float, queue_delay: float) -> Packet | None:
        return self.flow.dequeue(now, self.target, self.interval, self)

    def head_arrival(self) -> float:
        return self.flow.queue[0].arrival

    def packets(self) -> Iterator[Packet]:
        return iter(self.flow.queue)

    def clear(self) -> None:
        self.flow = FlowQueue()

    def __bool__(self) -> bool:
        return bool(self.flow.queue)
