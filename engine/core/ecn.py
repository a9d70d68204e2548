"""Marking a frame Congestion Experienced (RFC 3168), as an AQM does instead of dropping it."""

from __future__ import annotations

from engine.core.frames import ETH_P_IP, ETH_P_IPV6, VNET_HDR_LEN, l3_offset
from engine.core.packet import Packet
from engine.model.fates import CE_MARKED

NOT_ECT, ECT_1, ECT_0, CE = 0, 1, 2, 3


def ecn_field(frame: bytes) -> int | None:
    """The ECN codepoint of an IPv4 or IPv6 frame (vnet header first), None if not IP."""
    if len(frame) < VNET_HDR_LEN + 14:
        return None
    ethertype, l3 = l3_offset(frame, VNET_HDR_LEN)
    if ethertype == ETH_P_IP and len(frame) >= l3 + 20:
        return frame[l3 + 1] & 0x03
    if ethertype == ETH_P_IPV6 and len(frame) >= l3 + 40:
        return (frame[l3 + 1] >> 4) & 0x03
    return None


def mark_ce(frame: bytes) -> bytes | None:
    """The frame marked CE if it is ECN-capable (ECT(0) or ECT(1); one already CE comes back as
    it is), with the IPv4 header checksum updated (RFC 1624); None if it may not be marked
    (not ECN-capable, or not IP): then it has to be dropped."""
    codepoint = ecn_field(frame)
    if codepoint is None or codepoint == NOT_ECT:
        return None
    if codepoint == CE:
        return frame
    marked = bytearray(frame)
    _, l3 = l3_offset(frame, VNET_HDR_LEN)
    if marked[l3] >> 4 == 4:
        old_word = marked[l3] << 8 | marked[l3 + 1]
        marked[l3 + 1] |= CE
        new_word = marked[l3] << 8 | marked[l3 + 1]
        checksum = marked[l3 + 10] << 8 | marked[l3 + 11]
        total = (~checksum & 0xFFFF) + (~old_word & 0xFFFF) + new_word
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        checksum = ~total & 0xFFFF
        marked[l3 + 10], marked[l3 + 11] = checksum >> 8, checksum & 0xFF
    else:
        marked[l3 + 1] |= CE << 4
    return bytes(marked)


def mark_packet(packet: Packet) -> bool:
    """Mark a held packet CE in place (`mark_ce`), noted in its marks; False if it may not
    be marked."""
    marked = mark_ce(packet.frame)
    if marked is None:
        return False
    packet.frame = marked
    packet.marks |= CE_MARKED
    return True
