"""The kernel's arrival stamps, as the workers read them, on a real socket on loopback."""

from __future__ import annotations

import socket
import time

from engine.kernel.afpacket import STAMP_SPACE, arrival_stamp, stamp_arrivals


def _receive_one(stamped: bool) -> tuple[float, float, float | None]:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        stamp_arrivals(receiver, stamped)
        receiver.settimeout(2.0)
        before = time.time()
        sender.sendto(b"x", receiver.getsockname())
        buffer = bytearray(16)
        _size, ancillary, _flags, _peer = receiver.recvmsg_into([buffer], STAMP_SPACE)
        return before, time.time(), arrival_stamp(ancillary)


def test_a_stamped_socket_says_when_the_frame_arrived() -> None:
    before, after, stamp = _receive_one(stamped=True)
    assert stamp is not None and before <= stamp <= after


def test_an_unstamped_socket_has_no_stamp() -> None:
    assert _receive_one(stamped=False)[2] is None


def test_foreign_ancillary_data_is_ignored() -> None:
    assert arrival_stamp([(socket.SOL_IP, 8, b"\x00" * 16)]) is None
