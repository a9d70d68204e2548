"""Tail drop and head drop: a plain FIFO that drops the arrival (tail) or the oldest packet
(head) when the queue's limits are reached. As disciplines, so that a link treats every queue
alike; the link reads `queue` directly on its per-packet paths (Bottleneck._enqueue), where a
method call per packet would cost more than the queueing itself."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from engine.core.disciplines.base import Discipline
from engine.core.packet import Packet
from engine.model.impairments import QueueLimit


class TailDropQueue(Discipline):
    kind = "tail_drop"

    def __init__(self, queue: QueueLimit) -> None:
        super().__init__(queue)
        self.queue: deque[Packet] = deque()

    def push(self, packet: Packet, now: float, queue_delay: float) -> None:
        self.queue.append(packet)

    def adopt(self, packet: Packet) -> None:
        self.queue.append(packet)

    def pop(self, now: float, queue_delay: float) -> Packet | None:
        return self.queue.popleft() if self.queue else None

    def head_arrival(self) -> float:
        return self.queue[0].arrival

    def packets(self) -> Iterator[Packet]:
        return iter(self.queue)

    def in_arrival_order(self) -> list[Packet]:
        return list(self.queue)  # the order they came in, by definition

    def clear(self) -> None:
        self.queue.clear()

    def __bool__(self) -> bool:
        return bool(self.queue)


class HeadDropQueue(TailDropQueue):
    kind = "head_drop"

    def drop_for_room(self) -> Packet | None:
        return self.queue.popleft() if self.queue else None
