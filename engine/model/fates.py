"""The fate records of a capture (`linkshaper capture`): what the links did to each frame, and
how records travel (packed in messages.FateRecords) and are picked for one capture. The links
note them (engine/core/fates.py); the CLI, the HTTP API and the TUI read them."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

FORWARDED, LOSS, BURST_LOSS, QUEUE_FULL, BLOCKED, HELD_FULL, FLUSHED, MALFORMED = range(8)
AQM, OUTAGE, BLACKHOLED, RESET = 8, 9, 10, 11
#: Each fate's name, as the capture's packet comments and `linkshaper fates` say it. What a
#: link did to a frame beside its fate (copied, corrupted, reordered, marked CE) is in its
#: marks (MARKS), not a fate of its own: one frame may carry several.
FATE_NAMES = (
    "forwarded", "loss", "burst loss", "queue full", "blocked", "held full", "flushed",
    "malformed", "aqm", "outage", "blackholed", "reset",
)  # fmt: skip

#: A frame's marks, bits of one int (`Packet.marks`, `FateRecord.marks`), 0 for none: the
#: frame is the copy a duplication made; one of its bits was flipped (which one is in the
#: bits from CORRUPTED_BIT_SHIFT up, counted from the first bit of its Ethernet header, 8
#: to a byte, the lowest bit of a byte first); netem's reordering sent it past the latency;
#: it was marked Congestion Experienced (by `loss_ecn` or an AQM's `ecn`); a connection
#: fault (`slow_close`, `stall`) held it back: `held` is a mark, not a fate, since a held
#: frame is still forwarded (its delay, the hold included, is told as any forwarded frame's);
#: the engine made it (a connection fault's RST or FIN, engine/core/tcp_faults.py: the top
#: bit, above any corrupted bit's number, which a frame of at most 64 KiB keeps under 2**24).
DUPLICATED, CORRUPTED, REORDERED, CE_MARKED, HELD, INJECTED = 1, 2, 4, 8, 16, 1 << 31
CORRUPTED_BIT_SHIFT = 5
#: Each mark's name, as the packets view's filter and the capture's comments say it, with
#: its JSON key (`linkshaper fates --json`, after the stats' counters of the same).
MARKS = ((DUPLICATED, "duplicated", "duplicated"), (CORRUPTED, "corrupted", "corrupted"),
         (REORDERED, "reordered", "reordered"), (CE_MARKED, "CE-marked", "ecn_marked"),
         (HELD, "held", "held"), (INJECTED, "injected", "injected"))  # fmt: skip
MARK_NAMES = tuple(name for _, name, _ in MARKS)
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
    marks: int = 0  # what else the link did to it (DUPLICATED, ...): 0 for nothing


def corrupted_bit(marks: int) -> int | None:
    """The bit flipped in a frame with these marks (from its Ethernet header's first), or
    None if none was."""
    return (marks & ~INJECTED) >> CORRUPTED_BIT_SHIFT if marks & CORRUPTED else None


def mark_words(marks: int) -> list[str]:
    """The marks as words, in MARKS order; a corrupted frame's says which bit, and where
    (`corrupted bit 1234 (byte 154, 0x04)`: the byte's offset in the frame and the bit's
    value in it, as a packet dissector shows them)."""
    words = []
    for flag, name, _ in MARKS:
        if marks & flag:
            bit = corrupted_bit(marks) if flag == CORRUPTED else None
            words.append(name if bit is None else f"{name} bit {bit} "
                         f"(byte {bit // 8}, 0x{1 << bit % 8:02x})")  # fmt: skip
    return words


#: arrival (wall clock), fate, delay, queued, length, label index, head length; then the
#: marks if the fate byte has MARKED_FLAG (a frame without marks costs no byte more); then
#: the head.
_RECORD = struct.Struct("<dBffIHH")
_MARKS = struct.Struct("<I")
MARKED_FLAG = 0x80


def pack(records: list[FateRecord], offset: float) -> tuple[bytes, list[str]]:
    """Records as bytes for a message (see messages.FateRecords), their times moved onto the
    wall clock by `offset`; and the labels the records point into."""
    labels: dict[str, int] = {}
    parts: list[bytes] = []
    for record in records:
        index = labels.setdefault(record.label, len(labels))
        marks = record.marks
        fate = record.fate | MARKED_FLAG if marks else record.fate
        fields = (fate, record.delay, record.queued, record.length, index)
        parts.append(_RECORD.pack(record.arrival + offset, *fields, len(record.head)))
        if marks:
            parts.append(_MARKS.pack(marks))
        parts.append(record.head)
    return b"".join(parts), list(labels)


def unpack(data: bytes, labels: list[str]) -> list[FateRecord]:
    """What `pack` made; a short or garbled tail ends the list (never raises)."""
    records: list[FateRecord] = []
    at = 0
    while at + _RECORD.size <= len(data):
        arrival, fate, delay, queued, length, index, head_len = _RECORD.unpack_from(data, at)
        at += _RECORD.size
        marks = 0
        if fate & MARKED_FLAG:
            if at + _MARKS.size > len(data):
                break
            (marks,) = _MARKS.unpack_from(data, at)
            at += _MARKS.size
            fate &= ~MARKED_FLAG
        head = data[at : at + head_len]
        at += head_len
        if len(head) != head_len or fate >= len(FATE_NAMES) or index >= len(labels):
            break
        record = FateRecord(arrival, fate, delay, queued, labels[index], length, head, marks)
        records.append(record)
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
