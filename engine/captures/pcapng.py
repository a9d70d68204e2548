"""Fate records as pcapng, which Wireshark and tcpdump open: one interface block per direction
(named `ingress` and `egress`), each frame's head as it arrived, stamped with its arrival time,
and a packet comment with its fate. The comment is the record, so `linkshaper fates` reads the
file back with scapy alone. What else the link did to the frame (engine.model.fates.MARKS) is
a second comment, so a reader of the first alone reads every file as before:

    forwarded after 5.212 ms (queued 0.148 ms), link default
    dropped: queue full, link web
    impaired: duplicated, corrupted bit 1234 (byte 154, 0x04), CE-marked
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from scapy.packet import Raw
from scapy.utils import PcapNgReader, PcapNgWriter

from engine.model.fates import FATE_NAMES, FORWARDED, FateRecord, mark_words

DLT_EN10MB = 1

_FORWARDED = re.compile(r"forwarded after ([0-9.]+) ms \(queued ([0-9.]+) ms\), link (.+)")
_DROPPED = re.compile(r"dropped: (.+?), link (.+)")
_LOST = re.compile(r"capture: (\d+) records? lost")
_IMPAIRED = "impaired: "


def comment_of(record: FateRecord) -> str:
    if record.fate == FORWARDED:
        return (
            f"forwarded after {record.delay * 1000:.3f} ms "
            f"(queued {record.queued * 1000:.3f} ms), link {record.label}"
        )
    return f"dropped: {FATE_NAMES[record.fate]}, link {record.label}"


def marks_comment(record: FateRecord) -> str | None:
    """The second comment, of what else the link did to the frame; None if nothing."""
    return _IMPAIRED + ", ".join(mark_words(record.marks)) if record.marks else None


def read_marks(comment: str) -> tuple[str, ...]:
    """A `marks_comment` as its words (`corrupted bit 1234 (byte 154, 0x04)` whole); () for
    another comment. Words it does not know (a later version's) are kept."""
    if not comment.startswith(_IMPAIRED):
        return ()
    return tuple(word for word in _split_marks(comment[len(_IMPAIRED) :]) if word)


def _split_marks(text: str) -> list[str]:
    """Words split at the commas that are not inside parentheses."""
    words, depth, start = [], 0, 0
    for at, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            words.append(text[start:at].strip())
            start = at + 1
    words.append(text[start:].strip())
    return words


class _Writer(PcapNgWriter):
    """scapy's pcapng writer without its unnamed first interface: one block per direction."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.linktype = DLT_EN10MB
        self.interfaces2id = {None: -1}  # the first named interface gets id 0

    def _write_header(self, pkt: Any) -> None:
        if not self.header_present:
            self.header_present = True
            self._write_block_shb()


#: The permission bits of a capture file made afresh: its owner's only (it holds packet heads).
CAPTURE_FILE_MODE = 0o600
#: Bytes buffered before a write to the file, as scapy's own writer does.
WRITE_BUFFER = 4096


def open_capture_file(path: str, new_file: bool = False) -> int:
    """A descriptor for writing a capture to `path`, emptied: a file made now, or (unless
    `new_file`) a regular file of ours already there, as tcpdump -w writes over its own; or,
    as tcpdump writes them, a character device (`/dev/null`: only the privileged make one) or
    a FIFO of ours that a reader holds open (`mkfifo p; wireshark -k -i p`). Whatever else is
    at the name is refused with OSError naming the reason, never written through, and nothing
    waits: a symbolic link, a FIFO of another user's or with no reader (opened without
    blocking, for such an open would wait for ever), another user's file (they would read
    the capture), a file with other names (a hard link to a file elsewhere)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
    try:
        fd = os.open(path, flags | (os.O_EXCL if new_file else 0), CAPTURE_FILE_MODE)
    except OSError as exc:
        if os.path.islink(path):  # ELOOP, or EACCES where the kernel protects links in /tmp
            raise OSError(exc.errno, "a symbolic link, not followed", path) from None
        if exc.errno == errno.ENXIO:
            raise OSError(exc.errno, "a FIFO that no one reads", path) from None
        raise
    try:
        status = os.fstat(fd)
        if stat.S_ISCHR(status.st_mode) or (
            stat.S_ISFIFO(status.st_mode) and status.st_uid == os.geteuid()
        ):
            os.set_blocking(fd, True)
            return fd
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO or a device)", path)
        if status.st_uid != os.geteuid():
            raise OSError(
                errno.EPERM, f"a file of another user (uid {status.st_uid}), not written over",
                path,
            )  # fmt: skip
        if status.st_nlink != 1:
            raise OSError(errno.EMLINK, "a file with other names (hard links), not written", path)
        os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


class CaptureWriter:
    """Writes fate records to a pcapng file (standard output for `-`), flushed after each batch
    so that a reader at the other end of a pipe (`wireshark -k -i -`) sees them live."""

    def __init__(self, path: str | BinaryIO, new_file: bool = False) -> None:
        """`path`: a file name, `-` for standard output, or a binary file object (which
        scapy's writer cannot take: it writes to one opened in its place). Only a new file
        or a regular file of ours is written (`open_capture_file`: OSError otherwise): the
        engine and the CLI write captures as root, maybe in a directory others may write;
        with `new_file`, only a file made now (OSError EEXIST if anything is there), for a
        name someone else could have guessed."""
        self._writer = _Writer(os.devnull)
        self._writer.f.close()
        if isinstance(path, str):
            fd = os.dup(1) if path == "-" else open_capture_file(path, new_file)
            self._writer.f = os.fdopen(fd, "wb", WRITE_BUFFER)
        else:
            self._writer.f = path
        self._writer.write_header(None)
        self.written = 0
        self._lost_unsaid = 0
        self.lost = 0

    def lost_records(self, count: int) -> None:
        """Records the engine could not deliver: said in the next packet's comment."""
        self._lost_unsaid += count
        self.lost += count

    def write(self, direction: str, records: list[FateRecord]) -> None:
        for record in records:
            packet = Raw(record.head)
            packet.time = record.arrival
            packet.wirelen = record.length
            packet.sniffed_on = direction
            comments = [comment_of(record).encode()]
            marked = marks_comment(record)
            if marked is not None:
                comments.append(marked.encode())
            if self._lost_unsaid:
                comments.append(
                    f"capture: {self._lost_unsaid} records lost before this one "
                    "(the capture read too slowly)".encode()
                )
                self._lost_unsaid = 0
            packet.comments = comments
            self._writer.write_packet(packet)
            self.written += 1
        self._writer.f.flush()

    def close(self) -> None:
        self._writer.close()


@dataclass(frozen=True)
class ReadFate:
    """One frame of a capture file, as `linkshaper fates` reads it."""

    time: float
    direction: str
    fate: str
    delay_ms: float
    queued_ms: float
    link: str
    packet: Any  # the scapy packet (Ether, as far as the head goes)
    lost_before: int = 0
    #: What else the link did to it, as the comment says (`read_marks`): () for nothing.
    marks: tuple[str, ...] = ()


def read_capture(path: str) -> Iterator[ReadFate]:
    """The frames of a capture file in order; frames without a fate comment are skipped."""
    with PcapNgReader(path) as reader:
        for packet in reader:
            comments = [c.decode(errors="replace") for c in (packet.comments or [])]
            lost = sum(int(m.group(1)) for c in comments if (m := _LOST.match(c)))
            marks = next((words for c in comments if (words := read_marks(c))), ())
            for comment in comments:
                if match := _FORWARDED.match(comment):
                    delay, queued, link = float(match[1]), float(match[2]), match[3]
                    fate = "forwarded"
                elif match := _DROPPED.match(comment):
                    delay = queued = 0.0
                    fate, link = match[1], match[2]
                else:
                    continue
                direction = str(getattr(packet, "sniffed_on", "") or "")
                yield ReadFate(float(packet.time), direction, fate, delay, queued, link,
                               packet, lost, marks)  # fmt: skip
                break
