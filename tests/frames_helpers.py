"""Frames for tests, built with scapy and prefixed with a virtio-net header like AF_PACKET's."""

from __future__ import annotations

import random
from typing import Any

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether

from engine.core.frames import PLAIN_VNET_HDR, VnetHeader
from engine.core.packet import HeldRun

CLIENT = "198.18.0.1"
SERVER = "198.18.0.2"


def with_vnet(packet: Any, header: VnetHeader | None = None) -> bytes:
    prefix = PLAIN_VNET_HDR if header is None else header.pack()
    return prefix + bytes(packet)


def udp_frame(
    src: str = CLIENT, dst: str = SERVER, sport: int = 40000, dport: int = 5001, size: int = 100
) -> bytes:
    ip: Any = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    return with_vnet(Ether() / ip / UDP(sport=sport, dport=dport) / (b"x" * size))


def tcp_frame(
    src: str = CLIENT, dst: str = SERVER, sport: int = 40000, dport: int = 80, size: int = 100
) -> bytes:
    return with_vnet(Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport) / (b"x" * size))


def arp_frame() -> bytes:
    return with_vnet(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=CLIENT, pdst=SERVER))


def frame_of_l2_size(l2_bytes: int) -> bytes:
    """A UDP frame whose Ethernet frame is exactly `l2_bytes` long."""
    return udp_frame(size=l2_bytes - 14 - 20 - 8)


#: Where malformed test frames go: a locally administered address no host in the lab has.
NOBODY = "02:00:5e:00:00:01"


def malformed_frames(seed: int, count: int) -> list[bytes]:
    """`count` Ethernet frames (no vnet header) that start as valid ones (IPv4, IPv6, one and
    two VLAN tags, ARP) and are then cut short at any byte past the Ethernet header and have
    bytes overwritten, header fields included; plus a few made bad on purpose. All of them
    reach a packet socket: the kernel takes the outer VLAN tag off into the frame's metadata
    before any socket sees it, and drops a tagged frame too short for that (under 20 bytes)."""
    rng = random.Random(seed)
    tagged = Ether(dst=NOBODY, type=0x8100) / b"\x00\x05\x08\x00" / IP(dst=SERVER) / UDP()
    double = Ether(dst=NOBODY, type=0x88A8) / b"\x00\x05\x81\x00" / b"\x00\x06\x86\xdd"
    good = [
        bytes(Ether(dst=NOBODY) / IP(src=CLIENT, dst=SERVER) / UDP(dport=9) / (b"u" * 40)),
        bytes(Ether(dst=NOBODY) / IP(src=CLIENT, dst=SERVER) / TCP(dport=9) / (b"t" * 40)),
        bytes(Ether(dst=NOBODY) / IPv6(dst="2001:2::2") / UDP(dport=9) / (b"6" * 40)),
        bytes(tagged / (b"v" * 20)),
        bytes(double / IPv6(dst="2001:2::2") / TCP(dport=9)),
        bytes(Ether(dst=NOBODY) / ARP(psrc=CLIENT, pdst=SERVER)),
    ]
    header = bytes(Ether(dst=NOBODY))[:12]
    frames = [
        header + b"\x88\xa8\x00\x05\x81\x00\x00\x06",  # the inner tag cut short
        header + b"\x08\x00\x4f" + bytes(30),  # IPv4, header length 60, frame too short
        header + b"\x08\x00\x41" + bytes(30),  # IPv4, header length 4
        header + b"\x86\xdd\x60" + bytes(10),  # IPv6 cut short
    ]
    while len(frames) < count:
        data = bytearray(rng.choice(good))
        data = data[: rng.randrange(14, len(data) + 1)]
        for _ in range(rng.randrange(0, 6)):
            data[rng.randrange(12, len(data))] = rng.randrange(256)
        if len(data) >= 20 or bytes(data[12:14]) not in (b"\x81\x00", b"\x88\xa8"):
            frames.append(bytes(data))
    return frames[:count]


#: In the payload of every frame from `tagged_frames`, after "one" or "two" (its tags).
KEPT_MARKER = "-tagged-"


def tagged_frames(count: int) -> list[bytes]:
    """UDP frames (no vnet header), alternately with one VLAN tag (802.1Q, VLAN 82) and with
    two (802.1ad 5 outside, 802.1Q 6 inside), numbered in their payload."""
    frames = []
    for number in range(count):
        tags: Any = Dot1Q(vlan=82) if number % 2 == 0 else Dot1AD(vlan=5) / Dot1Q(vlan=6)
        name = "one" if number % 2 == 0 else "two"
        payload = f"{name}{KEPT_MARKER}{number}".encode()
        packet = Ether(dst=NOBODY) / tags / IP(src=CLIENT, dst=SERVER) / UDP(dport=9) / payload
        frames.append(bytes(packet))
    return frames


def copy_of(item: bytes | HeldRun) -> bytes:
    """A frame a link released as a copy (tests that hold no runs in bulk get only those)."""
    assert isinstance(item, bytes), item
    return item
