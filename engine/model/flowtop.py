"""The seed's traffic profile ("flowtop"): per far end, the packets and wire bits seen, in the
binary layout its engine keeps in the two profile files and its client reads from
`/top/ingress.profile` and `/top/egress.profile`.

The layout: SLOTS slots of three little-endian 64-bit words each: packets, bits (on the wire:
preamble, inter-frame gap and CRC counted, a frame padded to its minimum), and the flow's id:
port in bits 63..48, protocol in 39..32, the IPv4 address in 31..0 (its bytes in network order
read as a little-endian number, as the seed's specs write addresses). A far end's slot is a
hash of its id; far ends that share a slot add up, and the slot keeps the last one's id. Far
ends that are not IPv4 all count as id 0, as in the seed.
"""

from __future__ import annotations

import array
import struct
import sys
from collections.abc import Iterable

from engine.model.spec import FRAMING_OVERHEAD

SLOTS = 2048
_SLOT = struct.Struct("<QQQ")
SIZE = SLOTS * _SLOT.size
_MASK64 = (1 << 64) - 1
#: The least a frame is padded to, CRC not counted (what it costs on the wire beyond its
#: bytes is the rate limiter's FRAMING_OVERHEAD, the same as the seed's).
MIN_FRAME = 60

#: One far end's counts: (IP version, address as an integer in network order, protocol,
#: port, packets, wire bits).
FarEnd = tuple[int, int, int, int, int, int]


def wire_bits(l2_bytes: int, packets: int = 1) -> int:
    """The wire bits of `packets` frames of `l2_bytes` in all (each padded to MIN_FRAME when
    there is one: a super-frame's pieces are never that short)."""
    if packets == 1:
        l2_bytes = max(l2_bytes, MIN_FRAME)
    return (l2_bytes + FRAMING_OVERHEAD * packets) * 8


def flow_id(version: int, address: int, protocol: int, port: int) -> int:
    if version != 4:
        return 0
    little = int.from_bytes(address.to_bytes(4, "big"), "little")
    return (port << 48) | (protocol << 32) | little


def _mix64(k: int) -> int:
    """MurmurHash3's 64-bit finaliser: which slot an id takes."""
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _MASK64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _MASK64
    k ^= k >> 33
    return k


def profile(far_ends: Iterable[FarEnd]) -> bytes:
    """The profile file's bytes for these far ends' counts."""
    words = array.array("Q", bytes(SIZE))  # packets, bits, id; slot after slot
    for version, address, protocol, port, packets, bits in far_ends:
        ident = flow_id(version, address, protocol, port)
        at = (_mix64(ident) & (SLOTS - 1)) * 3
        words[at] = (words[at] + packets) & _MASK64
        words[at + 1] = (words[at + 1] + bits) & _MASK64
        words[at + 2] = ident
    if sys.byteorder != "little":
        words.byteswap()
    return words.tobytes()
