"""FQ-CoDel (RFC 8290): packets hashed by their 5-tuple into `flows` queues, each with its own
CoDel, served by deficit round robin (`quantum` bytes a round), new flows before old ones so
that a sparse flow (a ping, a game's updates, a call's audio) skips the bulk flows' queues.
Over the link's queue limits, packets are dropped from the head of the flow with the most
bytes queued, not from the arrival."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator

from engine.core.disciplines.base import Discipline
from engine.core.disciplines.codel import FlowQueue
from engine.core.frames import flow_key
from engine.core.packet import Packet
from engine.model.impairments import QueueLimit


class FqCodelQueue(Discipline):
    kind = "fq_codel"

    def __init__(self, queue: QueueLimit, rng: random.Random) -> None:
        super().__init__(queue)
        self._perturbation = rng.getrandbits(32)
        self._flows: dict[int, FlowQueue] = {}
        self._new: deque[FlowQueue] = deque()
        self._old: deque[FlowQueue] = deque()
        self._count = 0
        self.configure(queue)

    def configure(self, queue: QueueLimit) -> None:
        super().configure(queue)
        self.target = queue.setting("target") / 1000.0
        self.interval = queue.setting("interval") / 1000.0
        self.quantum = int(queue.setting("quantum"))
        #: (A change keeps queued packets where they are; new ones hash into the new number.)
        self.buckets = int(queue.setting("flows"))

    def bucket(self, packet: Packet) -> int:
        return hash((self._perturbation, flow_key(packet.frame))) % self.buckets

    def push(self, packet: Packet, now: float, queue_delay: float) -> None:
        index = self.bucket(packet)
        flow = self._flows.get(index)
        if flow is None:
            flow = self._flows[index] = FlowQueue()
            flow.index = index
        flow.append(packet)
        self._count += 1
        if not flow.listed:
            flow.listed = True
            flow.deficit = self.quantum
            self._new.append(flow)

    def adopt(self, packet: Packet) -> None:
        self.push(packet, 0.0, 0.0)  # (fq_codel decides nothing on arrival)

    def pop(self, now: float, queue_delay: float) -> Packet | None:
        while True:
            head = self._new if self._new else self._old
            if not head:
                return None
            flow = head[0]
            if flow.deficit <= 0:
                flow.deficit += self.quantum
                head.popleft()
                self._old.append(flow)
                continue
            before = len(flow.queue)
            packet = flow.dequeue(now, self.target, self.interval, self)
            self._count -= before - len(flow.queue)
            if packet is None:
                head.popleft()
                if head is self._new and self._old:
                    self._old.append(flow)  # RFC 8290 4.2: a new flow goes to the old list
                else:
                    flow.listed = False
                    self._forget(flow)
                continue
            flow.deficit -= packet.l2_bytes
            return packet

    def _forget(self, flow: FlowQueue) -> None:
        """Drop an empty, unlisted flow queue (its CoDel state goes with it, as it would be
        reset anyway once the queue stayed empty): memory stays bounded by the flows active."""
        if not flow.queue and not flow.dropping and self._flows.get(flow.index) is flow:
            del self._flows[flow.index]

    def head_arrival(self) -> float:
        return min(flow.queue[0].arrival for flow in self._flows.values() if flow.queue)

    def drop_for_room(self) -> Packet | None:
        fattest = max(self._flows.values(), key=lambda flow: flow.backlog, default=None)
        if fattest is None or not fattest.queue:
            return None
        packet = fattest.queue.popleft()
        fattest.backlog -= packet.l2_bytes
        self._count -= 1
        return packet

    def packets(self) -> Iterator[Packet]:
        for flow in self._flows.values():
            yield from flow.queue

    def clear(self) -> None:
        self._flows.clear()
        self._new.clear()
        self._old.clear()
        self._count = 0

    def __bool__(self) -> bool:
        return self._count > 0
