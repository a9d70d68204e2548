"""Noting what the links do to each frame while a capture runs (`linkshaper capture`).

Links decide every frame's fate; with a FateLog attached they also note it: the frame's head,
when it arrived, and what happened (forwarded after how long, and how much of that was queue
and serialisation; or dropped, and why; see engine/model/fates.py). The log is bounded: when
its reader falls behind, records are counted as lost, frames never are. Without a capture
nothing is attached and the links pay one attribute test per fate.
"""

from __future__ import annotations

from collections import deque

from engine.core.frames import VNET_HDR_LEN
from engine.model.fates import DEFAULT_SNAPLEN, FORWARDED, FateRecord

#: Records kept between two reads by the worker (about a tenth of a second at 500 000 a
#: second); more are counted as lost.
FATE_LIMIT = 50_000


class FateLog:
    """A capture's record buffer, shared by all links of one direction."""

    def __init__(self, snaplen: int = DEFAULT_SNAPLEN, drops_only: bool = False,
                 limit: int = FATE_LIMIT) -> None:  # fmt: skip
        self.snaplen = snaplen
        self.drops_only = drops_only
        self.records: deque[FateRecord] = deque()
        self.limit = limit
        self.lost = 0

    def note(self, frame: bytes | memoryview, arrival: float, fate: int, label: str,
             delay: float = 0.0, queued: float = 0.0, marks: int = 0) -> None:  # fmt: skip
        """Record one frame (vnet header included) unless it is only drops that are wanted
        and this one was forwarded, or the buffer is full (then it is counted as lost).
        `marks`: what else the link did to it (engine.model.fates.MARKS)."""
        if fate == FORWARDED and self.drops_only:
            return
        if len(self.records) >= self.limit:
            self.lost += 1
            return
        head = bytes(frame[VNET_HDR_LEN : VNET_HDR_LEN + self.snaplen])
        length = max(0, len(frame) - VNET_HDR_LEN)
        record = FateRecord(arrival, fate, delay, queued, label, length, head, marks)
        self.records.append(record)

    def take(self) -> tuple[list[FateRecord], int]:
        """The records so far and how many were lost since the last call; both start again."""
        records = list(self.records)
        self.records.clear()
        lost, self.lost = self.lost, 0
        return records, lost
