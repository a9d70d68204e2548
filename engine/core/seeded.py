"""Reproducible fates (a link's `seed`): every random decision about a packet drawn from a
stream that is a function of the seed, the flow and the packet's identity, not of the order or
the time in which packets arrived, so the same traffic meets the same fates on every run.

A packet's identity is what stays the same when the same traffic is sent again:
- TCP: its sequence number relative to the connection's first one seen (ISNs are random
  per connection), its length, its SYN/FIN/RST flags, and for a bare ACK the relative
  acknowledgement number;
- UDP: a hash of its payload (a test's datagrams carry their own numbers);
- other IP: a hash of the IP payload; non-IP: a hash of the frame;
plus the protocol and the addresses (not the ports: a client's ephemeral port changes from run
to run). Each identity seen again counts an occurrence, so a retransmission meets a fresh
decision, and the same retransmission in the next run meets the same one.

What still depends on timing: the queue (its limits and AQM), outages and slots follow the
clock by nature; a state machine (burst loss, a correlation) is stepped in arrival order, each
step drawn from its packet's stream, so traffic sent in the same order meets the same states.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections import OrderedDict
from typing import Any

from engine.core.frames import (
    ETH_P_IP,
    ETH_P_IPV6,
    PROTO_TCP,
    PROTO_UDP,
    VNET_HDR_LEN,
    l3_offset,
)
from engine.core.shared_bound import CONNECTIONS, IDENTITIES, SharedBound

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
#: Identities (and TCP connections) remembered for occurrence counts; the oldest go first.
MAX_IDENTITIES = 1 << 18
MAX_CONNECTIONS = 1 << 14
#: Streams of one packet: its arrival (duplication) and its pass past the queue (the rest).
ARRIVAL, PAST_QUEUE, COPY = 1, 2, 3
_TCP = struct.Struct("!HHIIBB")  # ports, seq, ack, data offset, flags
_IPV4 = struct.Struct("!BxH5xB2x4s4s")  # version/IHL, total length, protocol, addresses
_IPV6 = struct.Struct("!4xHB1x16s16s")  # payload length, next header, addresses
_IDENTITY = struct.Struct("!BIIIB")  # protocol, relative seq, length, relative ack, flags
_TWO = 2.0**-53


def mix64(value: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit function of a 64-bit value."""
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & MASK64
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & MASK64
    return value ^ (value >> 31)


class KeyedDraws(random.Random):
    """A `Random` whose draws come from a stream chosen by `start(key, stage)` (splitmix64):
    the impairments draw from it as from any `Random` (gauss, paretovariate, randrange)."""

    def __init__(self) -> None:
        super().__init__(0)
        self._state = 0

    def start(self, key: int, stage: int) -> None:
        self._state = mix64((key + stage * _GOLDEN) & MASK64)
        self.gauss_next = None  # (gauss keeps a second value: not across packets)

    def random(self) -> float:
        self._state = state = (self._state + _GOLDEN) & MASK64
        return (mix64(state) >> 11) * _TWO

    def getrandbits(self, k: int) -> int:
        bits = 0
        got = 0
        while got < k:
            self._state = state = (self._state + _GOLDEN) & MASK64
            bits = bits << 64 | mix64(state)
            got += 64
        return bits >> (got - k)


class PacketKeys:
    """Each packet's key: a keyed hash of the flow and its identity, with its occurrence."""

    def __init__(self, seed: int, flow: str, identities: SharedBound = IDENTITIES,
                 connections: SharedBound = CONNECTIONS) -> None:  # fmt: skip
        self.seed = seed
        flow_digest = hashlib.blake2b(flow.encode(), digest_size=16).digest()
        self._key = seed.to_bytes(8, "big") + flow_digest
        # Ordered: the oldest is forgotten in O(1) once the bound is reached (a dict's first
        # key is found by walking past the slots deleted before it: 40 to 640 µs a packet).
        self._seen: OrderedDict[bytes, int] = OrderedDict()
        self._connections: OrderedDict[tuple[bytes, bytes, int, int], list[int]] = OrderedDict()
        #: What all of the worker's seeded links remember together (shared_bound.py).
        self._identities, self._connections_bound = identities, connections
        identities.held_by(self, self._seen)
        connections.held_by(self, self._connections)

    def key(self, frame: bytes) -> int:
        """The 64-bit key of `frame`'s decisions (its identity's next occurrence)."""
        identity = self._identity(frame)
        digest = hashlib.blake2b(identity, digest_size=8, key=self._key).digest()
        seen = self._seen
        count = seen.get(digest, 0)
        if count or self._make_room(seen, self._identities, MAX_IDENTITIES):
            seen[digest] = count + 1
        return mix64(int.from_bytes(digest, "big") + count * _GOLDEN & MASK64)

    @staticmethod
    def _make_room(table: OrderedDict[Any, Any], bound: SharedBound, most: int) -> bool:
        """Room for one entry more in `table`: from the worker's bound while this link holds
        fewer than `most`, else in place of its oldest. False when the link holds none and the
        bound is spent (the entry is not remembered: an identity not remembered meets the
        decision of its first occurrence again; a connection, sequence numbers from 0)."""
        if len(table) < most and bound.take():
            return True
        if table:
            table.popitem(last=False)
            return True
        return False

    def _identity(self, frame: bytes) -> bytes:
        """The bytes that name the packet (see the module's docstring)."""
        if len(frame) < VNET_HDR_LEN + 14:
            return frame[VNET_HDR_LEN:]
        ethertype, l3 = l3_offset(frame, VNET_HDR_LEN)
        if ethertype == ETH_P_IP and len(frame) >= l3 + 20:
            first, total, protocol, src, dst = _IPV4.unpack_from(frame, l3)  # (src, dst: bytes)
            l4, end = l3 + (first & 0x0F) * 4, min(len(frame), l3 + total)
        elif ethertype == ETH_P_IPV6 and len(frame) >= l3 + 40:
            payload, protocol, src, dst = _IPV6.unpack_from(frame, l3)
            l4 = l3 + 40
            end = min(len(frame), l4 + payload)
        else:
            return frame[VNET_HDR_LEN:]
        head: bytes = bytes((protocol,)) + src + dst
        if protocol == PROTO_TCP and end >= l4 + 20:
            return head + self._tcp_identity(frame, l4, end, src, dst)
        if protocol == PROTO_UDP and end >= l4 + 8:
            return head + frame[l4 + 8 : end]
        return head + frame[l4:end]

    def _tcp_identity(self, frame: bytes, l4: int, end: int, src: bytes, dst: bytes) -> bytes:
        """Relative sequence and length, flags, and a bare ACK's relative acknowledgement."""
        sport, dport, seq, ack, offset, flags = _TCP.unpack_from(frame, l4)
        length = end - l4 - (offset >> 4) * 4
        connection = (src, dst, sport, dport)
        bases = self._connections.get(connection)
        if bases is None or flags & 0x02:  # first seen, or a SYN: a new connection
            bases = [seq, -1]
            known = connection in self._connections
            if known or self._make_room(self._connections, self._connections_bound,
                                        MAX_CONNECTIONS):  # fmt: skip
                self._connections[connection] = bases
        if bases[1] < 0 and flags & 0x10:  # the first ACK: acks count from here
            bases[1] = ack
        relative_ack = (ack - bases[1]) & 0xFFFFFFFF if length == 0 and bases[1] >= 0 else 0
        relative_seq = (seq - bases[0]) & 0xFFFFFFFF
        return _IDENTITY.pack(PROTO_TCP, relative_seq, max(0, length), relative_ack, flags & 0x07)
