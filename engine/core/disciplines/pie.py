"""PIE (RFC 8033): drop at enqueue with a probability that a PI controller updates every
`tupdate` from the queue's delay, to hold it near `target`, with a burst allowance
(`max_burst`), the RFC's auto-tuning of the controller's gains and its de-randomisation of
drops. The queue's delay is the link's own (bits queued over the rate), which PIE otherwise
estimates from departures. With ECN, a packet is marked CE instead of dropped while the
probability is at most 10 % (RFC 8033 5.1)."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator

from engine.core.disciplines.base import MTU_BYTES, Discipline
from engine.core.packet import Packet
from engine.model.impairments import QueueLimit

ALPHA = 0.125  # per second of delay off target
BETA = 1.25  # per second of delay change
MARK_ECN_THRESHOLD = 0.1
#: Updates caught up at most at once after an idle spell (the probability has decayed to
#: nothing long before).
MAX_CATCH_UP = 1000


def tuned(p: float, drop_prob: float) -> float:
    """RFC 8033 4.2's auto-tuning: the controller's step scaled down while the probability is
    small, so that it moves gently where a step would be large relative to it."""
    for limit, divisor in ((1e-6, 2048), (1e-5, 512), (1e-4, 128), (1e-3, 32), (1e-2, 8),
                           (1e-1, 2)):  # fmt: skip
        if drop_prob < limit:
            return p / divisor
    return p


class PieQueue(Discipline):
    kind = "pie"

    def __init__(self, queue: QueueLimit, rng: random.Random) -> None:
        super().__init__(queue)
        self._rng = rng
        self._queue: deque[Packet] = deque()
        self._bytes = 0
        self.drop_prob = 0.0
        self.qdelay_old = 0.0
        self.accu_prob = 0.0
        self._next_update: float | None = None
        self.configure(queue)
        self.burst_allowance = self.max_burst

    def configure(self, queue: QueueLimit) -> None:
        super().configure(queue)
        self.target = queue.setting("target") / 1000.0
        self.tupdate = queue.setting("tupdate") / 1000.0
        self.max_burst = queue.setting("max_burst") / 1000.0

    def update(self, queue_delay: float) -> None:
        """One run of the controller (RFC 8033 4.2-4.3), with the queue's delay now."""
        p = ALPHA * (queue_delay - self.target) + BETA * (queue_delay - self.qdelay_old)
        p = tuned(p, self.drop_prob)
        if self.drop_prob >= 0.1 and p > 0.02:
            p = 0.02
        self.drop_prob += p
        if queue_delay == 0 and self.qdelay_old == 0:
            self.drop_prob *= 0.98
        if queue_delay > 0.25:
            self.drop_prob += 0.02
        self.drop_prob = min(1.0, max(0.0, self.drop_prob))
        self.burst_allowance = max(0.0, self.burst_allowance - self.tupdate)
        half = self.target / 2
        if self.drop_prob == 0 and queue_delay < half and self.qdelay_old < half:
            self.burst_allowance = self.max_burst
        self.qdelay_old = queue_delay

    def _catch_up(self, now: float, queue_delay: float) -> None:
        """Run the updates due by `now` (virtual time: they happen when the link next acts)."""
        if self._next_update is None:
            self._next_update = now + self.tupdate
            return
        runs = 0
        while self._next_update <= now:
            if runs == MAX_CATCH_UP:
                self.drop_prob, self.qdelay_old = 0.0, queue_delay
                self.burst_allowance = self.max_burst
                self._next_update = now + self.tupdate
                break
            self.update(queue_delay)
            self._next_update += self.tupdate
            runs += 1

    def _drop_early(self) -> bool:
        """RFC 8033 4.1 with 5.4's de-randomisation: whether an arrival is dropped."""
        if self.burst_allowance > 0:
            return False
        if self.qdelay_old < self.target / 2 and self.drop_prob < 0.2:
            return False
        if self._bytes <= 2 * MTU_BYTES:
            return False
        if self.drop_prob == 0:
            self.accu_prob = 0.0
        self.accu_prob += self.drop_prob
        if self.accu_prob < 0.85:
            return False
        if self.accu_prob >= 8.5 or self._rng.random() < self.drop_prob:
            self.accu_prob = 0.0
            return True
        return False

    def push(self, packet: Packet, now: float, queue_delay: float) -> None:
        self._catch_up(now, queue_delay)
        if self._drop_early():
            if self.drop_prob > MARK_ECN_THRESHOLD:
                self.dropped.append(packet)
                return
            if not self.congestion_signal(packet):  # marked CE (ECN), or dropped
                return
        self._queue.append(packet)
        self._bytes += packet.l2_bytes

    def adopt(self, packet: Packet) -> None:
        self._queue.append(packet)
        self._bytes += packet.l2_bytes

    def pop(self, now: float, queue_delay: float) -> Packet | None:
        self._catch_up(now, queue_delay)
        if not self._queue:
            return None
        packet = self._queue.popleft()
        self._bytes -= packet.l2_bytes
        return packet

    def head_arrival(self) -> float:
        return self._queue[0].arrival

    def packets(self) -> Iterator[Packet]:
        return iter(self._queue)

    def clear(self) -> None:
        self._queue.clear()
        self._bytes = 0

    def __bool__(self) -> bool:
        return bool(self._queue)
