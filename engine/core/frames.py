"""Reading Ethernet frames as AF_PACKET hands them over with PACKET_VNET_HDR: pure functions.

Every frame is prefixed by a 10-byte virtio-net header. It says whether the checksum is still
partial (the sender offloaded it) and whether the frame is a GSO super-frame that stands for
several wire packets. Keeping that header lets the engine forward with offloads on, at full
speed, and still account for, or cut up, each wire packet.
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass
from typing import NamedTuple

VNET_HDR_LEN = 10
_VNET = struct.Struct("<BBHHHH")

VNET_F_NEEDS_CSUM = 1
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_TCPV6 = 4
GSO_UDP_L4 = 5
GSO_ECN = 0x80

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8

PROTO_TCP = 6
PROTO_UDP = 17

#: What the readers below accept: a frame of its own, or a view of a receive buffer.
FrameBytes = bytes | bytearray | memoryview

#: Enough of a frame to read all its headers: the vnet header, Ethernet with two VLAN tags,
#: IPv4 with options (or IPv6), TCP with options.
HEAD_BYTES = VNET_HDR_LEN + 14 + 8 + 60 + 60

#: A plain frame with no offload state, as written by a sender with offloads off.
PLAIN_VNET_HDR = bytes(VNET_HDR_LEN)


@dataclass(frozen=True, slots=True)
class VnetHeader:
    flags: int
    gso_type: int
    hdr_len: int
    gso_size: int
    csum_start: int
    csum_offset: int

    @classmethod
    def unpack(cls, frame: FrameBytes) -> VnetHeader:
        return cls(*_VNET.unpack_from(frame, 0))

    def pack(self) -> bytes:
        return _VNET.pack(
            self.flags,
            self.gso_type,
            self.hdr_len,
            self.gso_size,
            self.csum_start,
            self.csum_offset,
        )


class FlowKey(NamedTuple):
    """The fields flows are matched on. Addresses are big-endian integers; version 0 is non-IP.
    A named tuple, not a frozen dataclass: one is built per frame, and this builds in C."""

    version: int
    src: int
    dst: int
    protocol: int
    sport: int
    dport: int


NON_IP = FlowKey(0, 0, 0, 0, 0, 0)


_IPV4_FIELDS = struct.Struct("!B5xHxB2xII")  # version/IHL, fragment field, protocol, addresses
_IPV6_FIELDS = struct.Struct("!6xB1x16s16s")  # next header, addresses
_PORTS = struct.Struct("!HH")


def l3_offset(frame: FrameBytes, start: int) -> tuple[int, int]:
    """(ethertype, offset of the L3 header), skipping up to two VLAN tags."""
    offset = start + 12
    ethertype = frame[offset] << 8 | frame[offset + 1]
    offset += 2
    for _ in range(2):
        if ethertype not in (ETH_P_8021Q, ETH_P_8021AD) or len(frame) < offset + 4:
            break  # (a tag cut short leaves its own ethertype: not IP)
        ethertype = frame[offset + 2] << 8 | frame[offset + 3]
        offset += 4
    return ethertype, offset


def flow_key(frame: FrameBytes, start: int = VNET_HDR_LEN) -> FlowKey:
    """The flow fields of a frame that begins at `start`. Never raises: short or malformed
    frames come back as far as they could be read, or as NON_IP. (Read with one struct call
    per header: this runs for every frame.)"""
    size = len(frame)
    if size < start + 14:
        return NON_IP
    ethertype, l3 = l3_offset(frame, start)
    if ethertype == ETH_P_IP and size >= l3 + 20:
        first, fragment, protocol, src, dst = _IPV4_FIELDS.unpack_from(frame, l3)
        ihl = (first & 0x0F) * 4
        l4 = l3 + ihl
        if fragment & 0x1FFF == 0 and ihl >= 20 and size >= l4 + 4:
            sport, dport = _PORTS.unpack_from(frame, l4)
            return FlowKey(4, src, dst, protocol, sport, dport)
        return FlowKey(4, src, dst, protocol, 0, 0)
    if ethertype == ETH_P_IPV6 and size >= l3 + 40:
        protocol, src_bytes, dst_bytes = _IPV6_FIELDS.unpack_from(frame, l3)
        src = int.from_bytes(src_bytes, "big")
        dst = int.from_bytes(dst_bytes, "big")
        l4 = l3 + 40
        if protocol in (PROTO_TCP, PROTO_UDP) and size >= l4 + 4:
            sport, dport = _PORTS.unpack_from(frame, l4)
            return FlowKey(6, src, dst, protocol, sport, dport)
        return FlowKey(6, src, dst, protocol, 0, 0)
    return NON_IP


def plain_ip(frame: FrameBytes, size: int) -> bool:
    """Whether `frame` (`size` bytes from its vnet header on) is untagged IPv4 or IPv6 with
    room for its header: what `flow_key` reads as IP, found for less (the ethertype and the
    length), for a caller that needs to know only that."""
    l3 = VNET_HDR_LEN + 14
    ethertype = frame[l3 - 2] << 8 | frame[l3 - 1] if size >= l3 else 0
    return (ethertype == ETH_P_IP and size >= l3 + 20) or (
        ethertype == ETH_P_IPV6 and size >= l3 + 40
    )


def ones_complement_sum(data: bytes, initial: int = 0) -> int:
    if len(data) % 2:
        data += b"\x00"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = initial + sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 checksum of `data`, ready to be stored in a header."""
    return ~ones_complement_sum(data, initial) & 0xFFFF


def pseudo_header_sum(version: int, src: bytes, dst: bytes, protocol: int, length: int) -> int:
    if version == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, protocol, length)
    else:
        pseudo = src + dst + struct.pack("!IxxxB", length, protocol)
    return ones_complement_sum(pseudo)


#: The smallest segment size a super-frame may claim: Linux's TCP never sends segments of less
#: than 48 bytes of payload (TCP_MIN_SND_MSS). A frame that claims less (anyone with a raw
#: socket can write `gso_size=1`) would be cut into tens of thousands of pieces: it is
#: malformed, counted and handled whole (see `plausible_gso`).
MIN_GSO_SIZE = 48


def plausible_gso(frame: FrameBytes) -> bool:
    """False for a super-frame whose segment size no real sender uses (under MIN_GSO_SIZE)."""
    if len(frame) < VNET_HDR_LEN or frame[1] & ~GSO_ECN == GSO_NONE:
        return True
    return (frame[4] | (frame[5] << 8)) >= MIN_GSO_SIZE


class WireShape(NamedTuple):
    """How many wire packets a frame stands for, and their L2 bytes in all (built per frame)."""

    packets: int
    l2_bytes: int


def wire_shape(frame: FrameBytes, size: int | None = None) -> WireShape:
    """Wire packets and bytes of a frame with its vnet header. A super-frame counts as the
    segments the kernel would cut it into, each with its own copy of the headers. With
    `size`, `frame` may be just the frame's first HEAD_BYTES, and `size` its whole length."""
    if size is None:
        size = len(frame)
    if size < VNET_HDR_LEN or len(frame) < VNET_HDR_LEN:
        return WireShape(1, size)
    l2_len = size - VNET_HDR_LEN
    gso_type = frame[1] & ~GSO_ECN
    gso_size = frame[4] | (frame[5] << 8)
    if gso_type == GSO_NONE or gso_size < MIN_GSO_SIZE:  # see `plausible_gso`
        return WireShape(1, l2_len)
    headers = _header_length(frame)
    if headers is None:
        return WireShape(1, l2_len)
    payload = l2_len - headers
    if payload <= 0:
        return WireShape(1, l2_len)
    count = max(1, -(-payload // gso_size))
    return WireShape(count, payload + count * headers)


def _header_length(frame: FrameBytes) -> int | None:
    """Bytes of L2+L3+L4 headers of a TCP or UDP frame (after the vnet header), or None."""
    start = VNET_HDR_LEN
    if len(frame) < start + 14:
        return None
    ethertype, l3 = l3_offset(frame, start)
    if ethertype == ETH_P_IP and len(frame) >= l3 + 20:
        protocol = frame[l3 + 9]
        l4 = l3 + (frame[l3] & 0x0F) * 4
    elif ethertype == ETH_P_IPV6 and len(frame) >= l3 + 40:
        protocol = frame[l3 + 6]
        l4 = l3 + 40
    else:
        return None
    if protocol == PROTO_TCP and len(frame) >= l4 + 20:
        return l4 + (frame[l4 + 12] >> 4) * 4 - start
    if protocol == PROTO_UDP and len(frame) >= l4 + 8:
        return l4 + 8 - start
    return None


def segment(frame: bytes) -> list[bytes]:
    """Cut a GSO super-frame into wire packets; see `_segment`. Never raises on bad input."""
    try:
        return _segment(frame)
    except (IndexError, struct.error, ValueError):
        return [frame]


class _SegmentHeaders(NamedTuple):
    """Where a super-frame's headers are, and what its segments' checksums are seeded from."""

    version: int
    protocol: int
    src: bytes
    dst: bytes
    l3: int
    ip_len: int
    l4: int
    l4_len: int
    csum_offset: int


def _segment_headers(frame: bytes) -> _SegmentHeaders | None:
    """The IP and TCP or UDP headers of a super-frame, or None if it has none to cut by."""
    ethertype, l3 = l3_offset(frame, VNET_HDR_LEN)
    if ethertype == ETH_P_IP:
        version, ip_len = 4, (frame[l3] & 0x0F) * 4
        protocol = frame[l3 + 9]
        src, dst = frame[l3 + 12 : l3 + 16], frame[l3 + 16 : l3 + 20]
    elif ethertype == ETH_P_IPV6:
        version, ip_len = 6, 40
        protocol = frame[l3 + 6]
        src, dst = frame[l3 + 8 : l3 + 24], frame[l3 + 24 : l3 + 40]
    else:
        return None
    l4 = l3 + ip_len
    if protocol == PROTO_TCP and len(frame) >= l4 + 20:
        l4_len, csum_offset = (frame[l4 + 12] >> 4) * 4, 16
    elif protocol == PROTO_UDP and len(frame) >= l4 + 8:
        l4_len, csum_offset = 8, 6
    else:
        return None
    return _SegmentHeaders(version, protocol, src, dst, l3, ip_len, l4, l4_len, csum_offset)


def _segment(frame: bytes) -> list[bytes]:
    """Cut a GSO super-frame into the wire packets the kernel would have sent.

    Each segment gets correct lengths, IPv4 id and header checksum, TCP sequence number and
    flags, and a partial L4 checksum that the kernel completes on transmit (vnet NEEDS_CSUM).
    Frames that are not super-frames, or that cannot be parsed, come back unchanged.
    """
    vnet = VnetHeader.unpack(frame)
    gso_type = vnet.gso_type & ~GSO_ECN
    if gso_type not in (GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4) or vnet.gso_size < MIN_GSO_SIZE:
        return [frame]
    found = _segment_headers(frame)
    if found is None:
        return [frame]
    version, protocol, src, dst, l3, ip_len, l4, l4_len, csum_offset = found
    payload_start = l4 + l4_len
    payload = frame[payload_start:]
    if len(payload) <= vnet.gso_size:
        return [frame]

    start = VNET_HDR_LEN
    seg_vnet = VnetHeader(VNET_F_NEEDS_CSUM, GSO_NONE, 0, 0, l4 - start, csum_offset).pack()
    l2_header = frame[start:l3]
    ip_header = bytearray(frame[l3:l4])
    l4_header = bytearray(frame[l4:payload_start])
    ip_id = int.from_bytes(ip_header[4:6], "big") if version == 4 else 0
    seq = int.from_bytes(l4_header[4:8], "big") if protocol == PROTO_TCP else 0
    tcp_flags = l4_header[13] if protocol == PROTO_TCP else 0
    chunks = [payload[i : i + vnet.gso_size] for i in range(0, len(payload), vnet.gso_size)]
    segments: list[bytes] = []
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        l4_total = l4_len + len(chunk)
        if version == 4:
            struct.pack_into("!HH", ip_header, 2, ip_len + l4_total, (ip_id + index) & 0xFFFF)
            ip_header[10:12] = b"\x00\x00"
            struct.pack_into("!H", ip_header, 10, internet_checksum(bytes(ip_header)))
        else:
            struct.pack_into("!H", ip_header, 4, l4_total)
        if protocol == PROTO_TCP:
            struct.pack_into("!I", l4_header, 4, (seq + index * vnet.gso_size) & 0xFFFFFFFF)
            flags = tcp_flags
            if not last:
                flags &= ~0x09  # FIN and PSH only on the last segment
            if index > 0:
                flags &= ~0x80  # CWR only on the first
            l4_header[13] = flags
        else:
            struct.pack_into("!H", l4_header, 4, l4_total)
        seed = pseudo_header_sum(version, src, dst, protocol, l4_total)
        struct.pack_into("!H", l4_header, csum_offset, seed)
        segments.append(seg_vnet + l2_header + bytes(ip_header) + bytes(l4_header) + chunk)
    return segments


#: Where a VLAN tag sits in a frame read with its vnet header: after the two MAC addresses.
TAG_AT = VNET_HDR_LEN + 12
TAG_LEN = 4


def put_back_vlan_tag(buffer: memoryview, start: int, size: int, tag: bytes) -> int:
    """Insert the 4-byte VLAN `tag` (TPID and TCI) into the frame of `size` bytes at `start` of
    `buffer`, which must have room for 4 more, and shift the vnet header's offsets to match.
    The kernel takes a frame's outer tag off into its metadata before a packet socket sees the
    frame (afpacket.vlan_tag); a forwarder must put it back or strip every VLAN it carries.
    Returns the new size."""
    at = start + TAG_AT
    end = start + size
    if size < TAG_AT:
        return size
    buffer[at + TAG_LEN : end + TAG_LEN] = buffer[at:end]
    buffer[at : at + TAG_LEN] = tag
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = _VNET.unpack_from(buffer, start)
    if flags & VNET_F_NEEDS_CSUM:
        csum_start += TAG_LEN
    if gso_type & ~GSO_ECN != GSO_NONE:
        hdr_len += TAG_LEN
    _VNET.pack_into(buffer, start, flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)
    return size + TAG_LEN


def mark_partial_checksum(frame: bytearray | memoryview) -> None:
    """See `_mark_partial_checksum`; works in place on a writable frame (a view of the receive
    buffer), so that it can be sent from there. Never raises on bad input."""
    with contextlib.suppress(IndexError, struct.error, ValueError):
        _mark_partial_checksum(frame)


def _mark_partial_checksum(frame: bytearray | memoryview) -> None:
    """A super-frame whose checksum the kernel already verified (GRO) carries no partial
    checksum, and the kernel refuses to segment it on transmit. Mark it as partial with the
    pseudo-header seed, the state TSO frames arrive in. Other frames stay as they are."""
    size = len(frame)
    if size < VNET_HDR_LEN + 14 or not frame[1] or frame[0] & VNET_F_NEEDS_CSUM:
        return
    start = VNET_HDR_LEN
    ethertype, l3 = l3_offset(frame, start)
    if ethertype == ETH_P_IP and size >= l3 + 20:
        version, l4 = 4, l3 + (frame[l3] & 0x0F) * 4
        protocol = frame[l3 + 9]
        src, dst = bytes(frame[l3 + 12 : l3 + 16]), bytes(frame[l3 + 16 : l3 + 20])
    elif ethertype == ETH_P_IPV6 and size >= l3 + 40:
        version, l4 = 6, l3 + 40
        protocol = frame[l3 + 6]
        src, dst = bytes(frame[l3 + 8 : l3 + 24]), bytes(frame[l3 + 24 : l3 + 40])
    else:
        return
    csum_offset = {PROTO_TCP: 16, PROTO_UDP: 6}.get(protocol)
    if csum_offset is None or size < l4 + csum_offset + 2:
        return
    seed = pseudo_header_sum(version, src, dst, protocol, size - l4)
    struct.pack_into("!H", frame, l4 + csum_offset, seed)
    vnet = VnetHeader.unpack(frame)
    header = VnetHeader(
        vnet.flags | VNET_F_NEEDS_CSUM,
        vnet.gso_type,
        vnet.hdr_len,
        vnet.gso_size,
        l4 - start,
        csum_offset,
    )
    frame[:VNET_HDR_LEN] = header.pack()
