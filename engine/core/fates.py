"""What the links did to each frame, recorded while a capture runs (`linkshaper capture`).

Links decide every frame's fate; with a FateLog attached they also note it: the frame's head,
when it arrived, and what happened (forwarded after how long, and how much of that was queue
and serialisation; or dropped, and why). The log is bounded: when its reader falls behind,
records are counted as lost, frames never are. Without a capture nothing is attached and the
links pay one attribute test per fate.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from engine.core.frames import VNET_HDR_LEN

FORWARDED, LOSS, BURST_LOSS, QUEUE_FULL, BLOCKED, HELD_FULL, FLUSHED, MALFORMED = range(8)
#: Each fate's name, as the capture's packet comments and `linkshaper fates` say it.
FATE_NAMES = (
    "forwarded", "loss", "burst loss", "queue full", "blocked", "held full", "flushed",
    "malformed",
)  # fmt: skip
#: Records kept between two reads by the worker (about a tenth of a second at 500 000 a
#: second); more are counted as lost.
FATE_LIMIT = 50_000
DEFAULT_SNAPLEN = 128
MAX_SNAPLEN = 65535


@dataclass(frozen=True, slots=True)
class FateRecord:
    """One frame's fate. Times are the pipeline's clock (seconds); `delay` is arrival to
    release and `queued` the part of it before the serialiser finished (both 0 for drops)."""

    arrival: float
    fate: int
    delay: float
    queued: float
    label: str
    length: int  # the frame's length (Ethernet header on, vnet header off)
    head: bytes  # its first `snaplen` bytes


class FateLog:
    """A capture's record buffer, shared by all links of one direction."""

    def __init__(self, snaplen: int = DEFAULT_SNAPLEN, drops_only: bool = False,
                 limit: int = FATE_LIMIT) -> None:  # fmt: skip
        self.snaplen = snaplen
        self.drops_only = drops_only
        self.records: deque[FateRecord] = deque()
        self.limit = limit
        self.lost = 0

    def note(self, frame: bytes, arrival: float, fate: int, label: str,
             delay: float = 0.0, queued: float = 0.0) -> None:  # fmt: skip
        """Record one frame (vnet header included) unless it is only drops that are wanted
        and this one was forwarded, or the buffer is full (then it is counted as lost)."""
        if fate == FORWARDED and self.drops_only:
            return
        if len(self.records) >= self.limit:
            self.lost += 1
            return
        head = bytes(frame[VNET_HDR_LEN : VNET_HDR_LEN + self.snaplen])
        length = max(0, len(frame) - VNET_HDR_LEN)
        self.records.append(FateRecord(arrival, fate, delay, queued, label, length, head))

    def take(self) -> tuple[list[FateRecord], int]:
        """The records so far and how many were lost since the last call; both start again."""
        records = list(self.records)
        self.records.clear()
        lost, self.lost = self.lost, 0
        return records, lost


#: arrival (wall clock), fate, delay, queued, length, label index, head length; then the head.
_RECORD = struct.Struct("<dBffIHH")


def pack(records: list[FateRecord], offset: float) -> tuple[bytes, list[str]]:
    """Records as bytes for a message (see messages.FateRecords), their times moved onto the
    wall clock by `offset`; and the labels the records point into."""
    labels: dict[str, int] = {}
    parts: list[bytes] = []
    for record in records:
        index = labels.setdefault(record.label, len(labels))
        fields = (record.fate, record.delay, record.queued, record.length, index)
        parts.append(_RECORD.pack(record.arrival + offset, *fields, len(record.head)))
        parts.append(record.head)
    return b"".join(parts), list(labels)


def unpack(data: bytes, labels: list[str]) -> list[FateRecord]:
    """What `pack` made; a short or garbled tail ends the list (never raises)."""
    records: list[FateRecord] = []
    at = 0
    while at + _RECORD.size <= len(data):
        arrival, fate, delay, queued, length, index, head_len = _RECORD.unpack_from(data, at)
        at += _RECORD.size
        head = data[at : at + head_len]
        at += head_len
        if len(head) != head_len or fate >= len(FATE_NAMES) or index >= len(labels):
            break
        records.append(FateRecord(arrival, fate, delay, queued, labels[index], length, head))
    return records
