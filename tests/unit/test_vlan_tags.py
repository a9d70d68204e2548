"""VLAN tags: read from a frame's auxdata and put back in front of its payload (pure parts;
tests/lab/test_engine_e2e.py::test_vlan_tags_are_kept runs tagged frames through the engine)."""

from __future__ import annotations

import socket
import struct

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Dot1Q, Ether

from engine.core.frames import (
    GSO_TCPV4,
    VNET_F_NEEDS_CSUM,
    VNET_HDR_LEN,
    VnetHeader,
    put_back_vlan_tag,
)
from engine.kernel.afpacket import PACKET_AUXDATA, SOL_PACKET, vlan_tag


def auxdata(status: int, tci: int = 0, tpid: int = 0) -> tuple[int, int, bytes]:
    return SOL_PACKET, PACKET_AUXDATA, struct.pack("IIIHHHH", status, 60, 60, 0, 14, tci, tpid)


def test_the_tag_comes_from_the_auxdata_status_tci_and_tpid() -> None:
    stamp = (socket.SOL_SOCKET, 35, bytes(16))
    assert vlan_tag([stamp, auxdata(0x01)]) is None  # untagged
    assert vlan_tag(
        [stamp, auxdata(0x10 | 0x40, tci=(5 << 13) | 82, tpid=0x88A8)]
    ) == bytes.fromhex("88a8a052")
    assert vlan_tag([auxdata(0x10, tci=7)]) == bytes.fromhex("81000007")  # no TPID: 802.1Q
    assert vlan_tag([auxdata(0x10 | 0x40, tci=0, tpid=0x8100)]) == bytes.fromhex("81000000")
    assert vlan_tag([stamp]) is None and vlan_tag([]) is None


@pytest.mark.parametrize("start", [0, 70])
def test_a_tag_is_put_back_and_the_offsets_behind_it_move(start: int) -> None:
    payload = b"d" * 3000
    plain = Ether(dst="02:00:5e:00:00:01") / IP(dst="198.18.0.2") / TCP() / payload
    tagged = (
        Ether(dst="02:00:5e:00:00:01")
        / Dot1Q(vlan=82, prio=3)
        / IP(dst="198.18.0.2")
        / TCP()
        / payload
    )
    # A super-frame as the kernel hands it over: partial checksum from the TCP header on.
    header = VnetHeader(VNET_F_NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16)
    frame = header.pack() + bytes(plain)
    buffer = memoryview(bytearray(start + len(frame) + 4))
    buffer[start : start + len(frame)] = frame
    size = put_back_vlan_tag(buffer, start, len(frame), bytes.fromhex("81006052"))
    assert size == len(frame) + 4
    assert bytes(buffer[start + VNET_HDR_LEN : start + size]) == bytes(tagged)
    assert VnetHeader.unpack(buffer[start:]) == VnetHeader(
        VNET_F_NEEDS_CSUM, GSO_TCPV4, 58, 1448, 38, 16
    )


def test_a_plain_frame_keeps_its_empty_vnet_header() -> None:
    frame = bytes(VNET_HDR_LEN) + bytes(Ether() / IP() / TCP())
    buffer = memoryview(bytearray(len(frame) + 4))
    buffer[: len(frame)] = frame
    size = put_back_vlan_tag(buffer, 0, len(frame), bytes.fromhex("81000001"))
    assert bytes(buffer[:VNET_HDR_LEN]) == bytes(VNET_HDR_LEN)
    assert bytes(buffer[VNET_HDR_LEN + 12 : VNET_HDR_LEN + 16]) == bytes.fromhex("81000001")
    assert size == len(frame) + 4
