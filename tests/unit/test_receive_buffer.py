"""The receive buffer sized in time (issue 38, item 2): RX_BUFFER_TIME at the interface's
speed, within a floor and a cap, and the speed read from the driver of a real interface."""

from __future__ import annotations

import os
import socket

import pytest

from engine.kernel.afpacket import (
    RX_BUFFER_CAP,
    RX_BUFFER_FLOOR,
    interface_speed_mbit,
    rx_buffer_bytes,
)


@pytest.mark.parametrize(
    ("speed_mbit", "expected"),
    [
        (10_000, 12_500_000),  # a veth: 10 ms at 10 Gbit/s
        (1_250, 1_562_500),
        (None, 12_500_000),  # tells none: taken as 10 Gbit/s
        (100, RX_BUFFER_FLOOR),  # 125 kB would not hold a dozen super-frames
        (40_000, RX_BUFFER_CAP),  # 50 MB: capped at what it was before
    ],
)
def test_the_buffer_is_a_millisecond_at_the_speed_within_floor_and_cap(
    speed_mbit: int | None, expected: int
) -> None:
    assert rx_buffer_bytes(speed_mbit) == expected


@pytest.mark.skipif(os.geteuid() != 0, reason="an AF_PACKET socket needs root")
def test_loopback_tells_no_speed() -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        assert interface_speed_mbit(sock, "lo") is None
        assert interface_speed_mbit(sock, "no-such-if") is None
