"""Delivery in slots (netem's `slot`): what is due leaves only when a slot opens."""

from __future__ import annotations

import random

from engine.model.impairments import Slot


class SlotGate:
    """When each due packet may leave. A slot opens at `opens`; the packets due by then leave
    together, at most `packets` and `bytes` of them, and the next slot opens a uniformly drawn
    `min_delay`..`max_delay` later. A packet that falls due after the slot opened (the link
    was idle) waits for a new slot drawn from its due time."""

    def __init__(self, slot: Slot, rng: random.Random, now: float) -> None:
        self._rng = rng
        self.opens = now
        self.configure(slot)
        self._refill()

    def configure(self, slot: Slot) -> None:
        self._low = slot.min_delay / 1000.0
        self._high = slot.longest / 1000.0
        self._packets = slot.packets
        self._bytes = slot.bytes

    def _refill(self) -> None:
        self._packets_left = self._packets
        self._bytes_left = self._bytes

    def _draw(self) -> float:
        return self._low + self._rng.random() * (self._high - self._low)

    def release_time(self, due: float) -> float:
        """When a packet due at `due` (the earliest due of those held) leaves."""
        if self.opens < due:
            self.opens = due + self._draw()
            self._refill()
        return self.opens

    def sent(self, wire_packets: int, l2_bytes: int) -> None:
        """A packet left in the slot open now: when the slot is used up, the next is drawn."""
        packets_left, bytes_left = self._packets_left, self._bytes_left
        if packets_left is not None:
            packets_left -= wire_packets
        if bytes_left is not None:
            bytes_left -= l2_bytes
        self._packets_left, self._bytes_left = packets_left, bytes_left
        if (packets_left is not None and packets_left <= 0) or (
            bytes_left is not None and bytes_left <= 0
        ):
            self.opens += self._draw()
            self._refill()
