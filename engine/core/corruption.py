"""Corrupting a frame as netem's `corrupt` does, so that the receiver's checksum catches it."""

from __future__ import annotations

import random
import struct

from engine.core.frames import (
    GSO_ECN,
    GSO_NONE,
    VNET_F_NEEDS_CSUM,
    VNET_HDR_LEN,
    l3_offset,
    ones_complement_sum,
)


def complete_checksum(frame: bytearray) -> None:
    """Finish a partial L4 checksum (the sender offloaded it: vnet NEEDS_CSUM) in place, as the
    kernel would on transmit, and clear the flag: a bit flipped after this is one the
    receiver sees as a checksum error, not one the checksum would be computed over."""
    if not frame[0] & VNET_F_NEEDS_CSUM:
        return
    csum_start, csum_offset = struct.unpack_from("<HH", frame, 6)
    start = VNET_HDR_LEN + csum_start
    at = start + csum_offset
    if at + 2 > len(frame):
        return
    total = ones_complement_sum(bytes(frame[start:]))
    checksum = ~total & 0xFFFF
    struct.pack_into("!H", frame, at, checksum or 0xFFFF)  # (UDP sends 0 as all ones)
    frame[0] &= ~VNET_F_NEEDS_CSUM


def corrupt(frame: bytes, rng: random.Random) -> tuple[bytes, int | None]:
    """The frame with one random bit past its Ethernet header (and VLAN tags) flipped, its
    checksum completed first, and which bit that was: counted from the first bit of the
    Ethernet header (vnet header off), 8 to a byte, a byte's lowest bit first (see
    engine.model.fates.CORRUPTED). A super-frame or a frame with nothing past the header comes
    back as it is, with None (the pipeline cuts super-frames up before it corrupts them)."""
    if len(frame) < VNET_HDR_LEN + 15 or frame[1] & ~GSO_ECN != GSO_NONE:
        return frame, None
    _, l3 = l3_offset(frame, VNET_HDR_LEN)
    if l3 >= len(frame):
        return frame, None
    changed = bytearray(frame)
    complete_checksum(changed)
    bit = rng.randrange((len(changed) - l3) * 8)
    changed[l3 + bit // 8] ^= 1 << (bit % 8)
    return bytes(changed), (l3 - VNET_HDR_LEN) * 8 + bit
