"""Frames for tests, built with scapy and prefixed with a virtio-net header like AF_PACKET's."""

from __future__ import annotations

from typing import Any

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from engine.frames import PLAIN_VNET_HDR, VnetHeader

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
