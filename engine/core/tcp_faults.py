"""A link's TCP connection faults (`reset`, `limit_data`: engine/model/faults.py), as pure code.

A transparent link sees every segment of a connection, so it knows the sequence numbers each
end expects next: a segment from A to B carries A's next sequence number (`seq`) and, in its
acknowledgement, B's (`ack`). When a fault fires on a segment, that segment is dropped and
replaced by frames the engine makes: toward the receiver (B) they take the dropped segment's
place in the link, so they arrive after all that went before it and `seq` is exactly what B
expects; toward the sender (A) they leave at once, from A's side, with `ack` as their `seq`.
A Linux end accepts a RST only at exactly the sequence number it expects next (RFC 5961),
which these are. The worker sends the frames for the sender on the interface it reads from
(I/O stays at the edges: this module only says which frames go which way).

Once a connection is closed, its later segments (retransmissions) are dropped as well, each
answered with a RST to its sender; a new SYN on the same 5-tuple starts a new connection.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from engine.core.connections import Connection, ConnectionKey, ConnectionTable
from engine.core.frames import (
    ETH_P_IP,
    ETH_P_IPV6,
    PLAIN_VNET_HDR,
    PROTO_TCP,
    VNET_HDR_LEN,
    internet_checksum,
    l3_offset,
    pseudo_header_sum,
)
from engine.model.faults import LimitData, Reset

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
#: Salts of the seeded toxicity draws (a connection's reset and its data limit differ).
RESET_SALT = 0x3C6EF372FE94F82B
LIMIT_SALT = 0xA54FF53A5F1D36F1
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_MASK32 = 0xFFFFFFFF

#: Whether a new connection is affected: (toxicity, salt) -> bool, from the link's draws.
Toxic = Callable[[float, int], bool]


class Segment(NamedTuple):
    """What a fault needs of a TCP segment: its link-layer header (tags kept), addresses,
    ports, sequence and acknowledgement numbers, flags and data length."""

    l2: bytes
    version: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    payload: int


def read_segment(frame: bytes) -> Segment | None:
    """The TCP segment in `frame` (vnet header on), or None if it is not an unfragmented
    TCP segment over IPv4 or IPv6 (no extension headers) that can be read whole."""
    if len(frame) < VNET_HDR_LEN + 14:
        return None
    ethertype, l3 = l3_offset(frame, VNET_HDR_LEN)
    if ethertype == ETH_P_IP and len(frame) >= l3 + 20:
        first, _, total, _, fragment, _, protocol, _, src, dst = _IPV4.unpack_from(frame, l3)
        l4, version = l3 + (first & 0x0F) * 4, 4
        end = l3 + total
        if protocol != PROTO_TCP or fragment & 0x3FFF or l4 < l3 + 20:
            return None
    elif ethertype == ETH_P_IPV6 and len(frame) >= l3 + 40:
        _, length, protocol, _, src, dst = _IPV6.unpack_from(frame, l3)
        l4, version, end = l3 + 40, 6, l3 + 40 + length
        if protocol != PROTO_TCP:
            return None
    else:
        return None
    if len(frame) < l4 + 20:
        return None
    sport, dport, seq, ack, offset, flags, _, _, _ = _TCP.unpack_from(frame, l4)
    payload = max(0, min(end, len(frame)) - l4 - (offset >> 4) * 4)
    l2 = bytes(frame[VNET_HDR_LEN:l3])
    return Segment(l2, version, src, dst, sport, dport, seq, ack, flags, payload)


def tcp_frame(l2: bytes, version: int, src: bytes, dst: bytes, ports: tuple[int, int],
              seq: int, ack: int, flags: int) -> bytes:  # fmt: skip
    """A frame (plain vnet header on) holding a bare TCP segment, checksums filled in."""
    sport, dport = ports
    header = _TCP.pack(sport, dport, seq & _MASK32, ack & _MASK32, 5 << 4, flags, 0, 0, 0)
    initial = pseudo_header_sum(version, src, dst, PROTO_TCP, len(header))
    checksum = internet_checksum(header, initial)
    tcp = header[:16] + struct.pack("!H", checksum) + header[18:]
    if version == 4:
        ip = bytearray(_IPV4.pack(0x45, 0, 20 + len(tcp), 0, 0x4000, 64, PROTO_TCP, 0, src, dst))
        ip[10:12] = struct.pack("!H", internet_checksum(bytes(ip)))
    else:
        ip = bytearray(_IPV6.pack(0x60000000, len(tcp), PROTO_TCP, 64, src, dst))
    return PLAIN_VNET_HDR + l2 + bytes(ip) + tcp


def _acked(segment: Segment) -> int:
    """The sequence number just past the segment (its data, SYN and FIN count)."""
    return segment.seq + segment.payload + bool(segment.flags & SYN) + bool(segment.flags & FIN)


def to_receiver(segment: Segment, flags: int, offset: int = 0) -> bytes:
    """A segment as if from the sender, at the dropped segment's sequence number."""
    ack = segment.ack if segment.flags & ACK else 0
    ports = (segment.sport, segment.dport)
    return tcp_frame(segment.l2, segment.version, segment.src, segment.dst, ports,
                     segment.seq + offset, ack, flags | ACK)  # fmt: skip


def to_sender(segment: Segment, flags: int, offset: int = 0) -> bytes:
    """A segment as if from the receiver, back to the sender: its Ethernet addresses and
    its ends swapped, at the sequence number the sender expects (the segment's `ack`). A
    lone RST acknowledges the segment (as a stack's reset of it would: an end that sent a SYN
    checks that); a FIN and what follows it acknowledge only what came before the segment,
    which was not delivered."""
    l2 = segment.l2[6:12] + segment.l2[:6] + segment.l2[12:]
    seq = segment.ack if segment.flags & ACK else 0
    ack = segment.seq if flags & FIN or offset else _acked(segment)
    ports = (segment.dport, segment.sport)
    return tcp_frame(l2, segment.version, segment.dst, segment.src, ports, seq + offset, ack,
                     flags | ACK)  # fmt: skip


@dataclass(slots=True)
class TcpConnection(Connection):
    """A connection as the TCP faults see it."""

    #: Whether `limit_data` applies to it (its own toxicity draw), and its data each way
    #: (from the lower end of its key, from the higher), and whether a fault closed it.
    limited: bool = False
    sent: list[int] = field(default_factory=lambda: [0, 0])
    closed: bool = False


class TcpTable(ConnectionTable):
    """The connection table of the TCP faults (each new one drawn for both faults)."""

    limited: Callable[[], bool] = staticmethod(lambda: False)

    def _new(self, now: float, size: int, toxic: Callable[[], bool]) -> Connection:
        return TcpConnection(now, now, size, toxic(), limited=self.limited())


class Verdict(NamedTuple):
    """A fault fired on a segment: it is dropped, and these frames go toward its receiver
    (in its place in the link) and toward its sender (at once)."""

    forward: list[bytes]
    back: list[bytes]


#: RSTs a link sends back to the segments of connections a fault closed, at most this many a
#: second (and in a burst): each such segment is answered, as a stack would, but a flood of
#: them must not make the engine a reflector (Linux limits its challenge ACKs alike).
CLOSED_REPLIES_PER_S = 100.0


def _group_sender(segment: Segment) -> bool:
    """Whether the segment came from a group (multicast or broadcast) Ethernet address: no
    station sends from one, so nothing is sent back to it (it would go to every station)."""
    return bool(segment.l2[6] & 1)


class TcpFaults:
    """A link's TCP faults and the connections they follow."""

    def __init__(self, reset: Reset | None, limit: LimitData | None) -> None:
        self.table = TcpTable()
        self.configure(reset, limit)
        #: The replies to closed connections' segments still allowed now (a token bucket).
        self._replies = CLOSED_REPLIES_PER_S
        self._replies_at = float("-inf")
        #: Replies not sent: to a group address, or past CLOSED_REPLIES_PER_S.
        self.replies_withheld = 0

    def configure(self, reset: Reset | None, limit: LimitData | None) -> None:
        """New settings; the connections stay (a fault fired stays fired)."""
        self.reset, self.limit = reset, limit

    def check(self, frame: bytes, now: float, size: int, toxic: Toxic) -> Verdict | None:
        """What to do with a frame of `size` bytes that arrived at `now`: None to let it
        pass, else a Verdict (the frame is dropped)."""
        segment = read_segment(frame)
        if segment is None:
            return None
        key, way = segment_key(segment)
        reset, limit = self.reset, self.limit
        self.table.limited = lambda: limit is not None and toxic(limit.toxicity, LIMIT_SALT)
        connection = self.table.see(
            key, now, size, lambda: reset is not None and toxic(reset.toxicity, RESET_SALT)
        )
        if not isinstance(connection, TcpConnection) or segment.flags & RST:
            return None
        if connection.closed:
            if segment.flags & (SYN | ACK) != SYN:
                return Verdict([], self._back(segment, [RST], now))
            connection.closed, connection.first_seen = False, now
            connection.bytes, connection.sent = size, [0, 0]
        before = connection.sent[way]
        connection.sent[way] += segment.payload
        if (
            reset is not None
            and connection.toxic
            and reset.struck(connection.bytes - size, now - connection.first_seen)
        ):
            connection.closed = True
            return Verdict([to_receiver(segment, RST)], self._back(segment, [RST]))
        if (
            limit is not None
            and connection.limited
            and segment.payload
            and (before >= limit.after_bytes)
        ):
            connection.closed = True
            forward = [to_receiver(segment, FIN), to_receiver(segment, RST, 1)]
            return Verdict(forward, self._back(segment, [FIN, RST]))
        return None

    def _back(self, segment: Segment, flags: list[int], now: float | None = None) -> list[bytes]:
        """The segments toward the sender (`flags` each, at its next sequence numbers), none
        to a group address; with `now`, a reply to a closed connection's segment, at most
        CLOSED_REPLIES_PER_S."""
        if _group_sender(segment):
            self.replies_withheld += 1
            return []
        if now is not None:
            elapsed = max(0.0, now - self._replies_at)
            self._replies_at = now
            self._replies = min(
                CLOSED_REPLIES_PER_S, self._replies + elapsed * CLOSED_REPLIES_PER_S
            )
            if self._replies < 1.0:
                self.replies_withheld += 1
                return []
            self._replies -= 1.0
        return [to_sender(segment, flag, index) for index, flag in enumerate(flags)]

    def __len__(self) -> int:
        return len(self.table)


def segment_key(segment: Segment) -> tuple[ConnectionKey, int]:
    """The segment's connection, as `connection_key` reads it from the frame (the same both
    ways), and which way it goes: 0 from the lower end of the key, 1 from the higher."""
    src, dst = int.from_bytes(segment.src, "big"), int.from_bytes(segment.dst, "big")
    sport, dport, version = segment.sport, segment.dport, segment.version
    if (src, sport) <= (dst, dport):
        return (version, PROTO_TCP, src, sport, dst, dport), 0
    return (version, PROTO_TCP, dst, dport, src, sport), 1
