"""Frame parsing and software segmentation of GSO super-frames, checked with scapy."""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from engine.core.frames import (
    GSO_TCPV4,
    GSO_TCPV6,
    GSO_UDP_L4,
    HEAD_BYTES,
    NON_IP,
    VNET_F_NEEDS_CSUM,
    VNET_HDR_LEN,
    VnetHeader,
    flow_key,
    internet_checksum,
    mark_partial_checksum,
    plain_ip,
    segment,
    wire_shape,
)
from tests.frames_helpers import arp_frame, malformed_frames, udp_frame, with_vnet

MSS = 1448


def complete_checksum(frame: bytes) -> bytes:
    """Do what the kernel does on transmit for a NEEDS_CSUM frame."""
    vnet = VnetHeader.unpack(frame)
    assert vnet.flags & VNET_F_NEEDS_CSUM
    l2 = bytearray(frame[VNET_HDR_LEN:])
    start = vnet.csum_start
    struct.pack_into("!H", l2, start + vnet.csum_offset, internet_checksum(bytes(l2[start:])))
    return bytes(l2)


def super_frame(ip: Any, l4: Any, payload: int, gso_type: int) -> bytes:
    packet = Ether() / ip / l4 / bytes(random.Random(1).randbytes(payload))
    raw = bytearray(bytes(packet))
    l4_start = 14 + (20 if isinstance(ip, IP) else 40)
    # The engine rewrites the check field of every segment; start from garbage.
    offset = 16 if isinstance(l4, TCP) else 6
    struct.pack_into("!H", raw, l4_start + offset, 0xBEEF)
    header = VnetHeader(VNET_F_NEEDS_CSUM, gso_type, 0, MSS, l4_start, offset)
    return header.pack() + bytes(raw)


def test_tcp_v4_super_frame_segments_like_the_kernel() -> None:
    frame = super_frame(
        IP(src="198.18.0.1", dst="198.18.0.2", id=100),
        TCP(sport=1000, dport=80, seq=5000, flags="PA"),
        10 * MSS + 100,
        GSO_TCPV4,
    )
    shape = wire_shape(frame)
    assert shape.packets == 11
    assert wire_shape(frame[:HEAD_BYTES], len(frame)) == shape  # from its headers alone
    pieces = segment(frame)
    assert len(pieces) == 11
    assert sum(len(p) - VNET_HDR_LEN for p in pieces) == shape.l2_bytes
    payload = b""
    for index, piece in enumerate(pieces):
        packet = Ether(complete_checksum(piece))
        assert len(piece) - VNET_HDR_LEN <= 1514
        ip, tcp = packet[IP], packet[TCP]
        assert ip.id == 100 + index
        assert tcp.seq == 5000 + index * MSS
        assert ("P" in str(tcp.flags)) == (index == 10)
        check_ip, check_tcp = ip.chksum, tcp.chksum
        del ip.chksum, tcp.chksum
        rebuilt = Ether(bytes(packet))
        assert rebuilt[IP].chksum == check_ip
        assert rebuilt[TCP].chksum == check_tcp
        payload += bytes(tcp.payload)
    assert payload == random.Random(1).randbytes(10 * MSS + 100)


def test_tcp_v6_super_frame() -> None:
    frame = super_frame(
        IPv6(src="2001:2::1", dst="2001:2::2"), TCP(seq=1, flags="FA"), 3 * MSS, GSO_TCPV6
    )
    pieces = segment(frame)
    assert len(pieces) == 3
    for index, piece in enumerate(pieces):
        packet = Ether(complete_checksum(piece))
        assert packet[IPv6].plen == 20 + MSS
        assert ("F" in str(packet[TCP].flags)) == (index == 2)
        check = packet[TCP].chksum
        del packet[TCP].chksum
        assert Ether(bytes(packet))[TCP].chksum == check


def test_udp_l4_super_frame() -> None:
    frame = super_frame(
        IP(src="198.18.0.1", dst="198.18.0.2"), UDP(sport=9, dport=10), 2 * MSS + 5, GSO_UDP_L4
    )
    pieces = segment(frame)
    assert [len(Ether(p[VNET_HDR_LEN:])[UDP].payload) for p in pieces] == [MSS, MSS, 5]
    for piece in pieces:
        packet = Ether(complete_checksum(piece))
        check = packet[UDP].chksum
        del packet[UDP].chksum
        assert Ether(bytes(packet))[UDP].chksum == check


def test_gro_super_frame_is_marked_partial() -> None:
    packet = Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / TCP() / (b"y" * (2 * MSS))
    truth = Ether(bytes(packet))[TCP].chksum  # scapy's full checksum of the merged segment
    gro = VnetHeader(2, GSO_TCPV4, 0, MSS, 0, 0)  # DATA_VALID, no NEEDS_CSUM
    fixed = bytearray(gro.pack() + bytes(packet))
    mark_partial_checksum(fixed)
    assert VnetHeader.unpack(fixed).flags & VNET_F_NEEDS_CSUM
    assert Ether(complete_checksum(bytes(fixed)))[TCP].chksum == truth


def test_plain_frames_pass_unchanged() -> None:
    frame = udp_frame()
    assert segment(frame) == [frame]
    assert wire_shape(frame).packets == 1
    marked = bytearray(frame)
    mark_partial_checksum(marked)
    assert marked == frame


def test_flow_keys() -> None:
    key = flow_key(udp_frame(sport=1234, dport=5001))
    assert key.version == 4 and key.protocol == 17 and (key.sport, key.dport) == (1234, 5001)
    assert key.src == int.from_bytes(bytes([198, 18, 0, 1]), "big")
    assert flow_key(udp_frame(src="2001:2::1", dst="2001:2::2")).version == 6
    assert flow_key(arp_frame()) is NON_IP
    vlan = with_vnet(Ether(type=0x8100) / b"\x00\x05\x08\x00" / IP(src="1.2.3.4") / UDP(dport=7))
    assert flow_key(vlan).dport == 7


@pytest.mark.parametrize("seed", range(5))
def test_malformed_frames_never_raise(seed: int) -> None:
    rng = random.Random(seed)
    tagged = Ether(type=0x88A8) / b"\x00\x05\x81\x00" / b"\x00\x06\x86\xdd" / IPv6() / UDP()
    good = [
        udp_frame(),
        arp_frame(),
        super_frame(IP(), TCP(), 3 * MSS, GSO_TCPV4),
        with_vnet(tagged),
    ]
    for _ in range(3000):
        base = bytearray(rng.choice(good))
        cut = rng.randrange(0, len(base) + 1)
        data = base[:cut]
        for _ in range(rng.randrange(0, 6)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        frame = bytes(data) if len(data) >= VNET_HDR_LEN else bytes(VNET_HDR_LEN) + bytes(data)
        flow_key(frame)
        assert wire_shape(frame[:HEAD_BYTES], len(frame)) == wire_shape(frame)
        segment(frame)
        mark_partial_checksum(bytearray(frame))


def test_plain_ip_says_ip_only_where_flow_key_reads_ip_and_no_tag() -> None:
    """The pipeline skips `flow_key` for frames `plain_ip` vouches for: it must never vouch for
    one `flow_key` reads as non-IP (tagged IP it may leave to `flow_key`)."""
    vlan = with_vnet(Ether(type=0x8100) / b"\x00\x05\x08\x00" / IP(src="1.2.3.4") / UDP(dport=7))
    frames = [udp_frame(), udp_frame(src="2001:2::1", dst="2001:2::2"), arp_frame(), vlan,
              udp_frame()[:30], *malformed_frames(seed=3, count=300)]  # fmt: skip
    vouched = [f for f in frames if plain_ip(f, len(f))]
    assert udp_frame() in vouched and vlan not in vouched and arp_frame() not in vouched
    for frame in vouched:
        assert flow_key(frame) is not NON_IP
