"""The fate records of a capture (`linkshaper capture`): what the links did to each frame, and
how records travel (packed in messages.FateRecords) and are picked for one capture. The links
note them (engine/core/fates.py); the CLI, the HTTP API and the TUI read them."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

FORWARDED, LOSS, BURST_LOSS, QUEUE_FULL, BLOCKED, HELD_FULL, FLUSHED, MALFORMED = range(8)
AQM, OUTAGE = 8, 9
#: Each fate's name, as the capture's packet comments and `linkshaper fates` say it. (A frame
#: marked CE, corrupted or duplicated is forwarded: its head in the capture shows what was
#: done to it, and a duplicate is a second record.)
FATE_NAMES = (
    "forwarded", "loss", "burst loss", "queue full", "blocked", "held full", "flushed",
    "malformed", "aqm", "outage",
)  # fmt: skip
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


def wanted_records(data: str, labels: list[str], label: str | None,
                   drops_only: bool) -> list[FateRecord]:  # fmt: skip
    """A batch as a message carries it (base64 of `pack`), cut to what one capture asked for
    (workers send what all captures running want), in arrival order: drops are noted when
    they happen, forwarded frames when they leave."""
    records = [
        r for r in unpack(base64.b64decode(data), labels)
        if (label is None or r.label == label) and not (drops_only and r.fate == FORWARDED)
    ]  # fmt: skip
    records.sort(key=lambda record: record.arrival)
    return records
