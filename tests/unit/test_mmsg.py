"""`engine.kernel.mmsg` against real sockets: a datagram socket pair stands in for the AF_PACKET
sockets (the same system calls, and no privileges or lab needed). Bulk streams through the
engine, which use it, are in test_engine_e2e."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from engine.kernel.mmsg import BATCH, SLOT, FrameBatch

Pair = tuple[socket.socket, socket.socket]


def _pair() -> Iterator[Pair]:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    yield left, right
    left.close()
    right.close()


#: Frames come in at the right end of `pair`; those sent on go in at the left end of `out`.
pair = pytest.fixture(_pair)
out = pytest.fixture(_pair)


def datagram(number: int) -> bytes:
    """Each one different in size and content; the largest fills a slot."""
    size = SLOT if number == 0 else 1 + number * 97
    return bytes([number % 256]) * size


def test_a_batch_takes_what_is_queued_in_order_up_to_its_size(pair: Pair) -> None:
    left, right = pair
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    right.setblocking(False)
    sent = [datagram(n) for n in range(BATCH + 5)]
    for data in sent:
        left.send(data)
    batch = FrameBatch()
    first = batch.receive(right)
    assert first == BATCH
    assert [bytes(batch.frame(i)) for i in range(first)] == sent[:BATCH]
    assert list(batch.sizes[:first]) == [len(data) for data in sent[:BATCH]]
    second = batch.receive(right)
    assert [bytes(batch.frame(i)) for i in range(second)] == sent[BATCH:]
    with pytest.raises(BlockingIOError):
        batch.receive(right)


def test_a_blocking_read_waits_for_the_first_frame_then_takes_only_what_is_queued(
    pair: Pair,
) -> None:
    left, right = pair
    right.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 50_000))
    batch = FrameBatch()
    started = time.monotonic()
    with pytest.raises(BlockingIOError):  # the socket's receive timeout, as recv_into has it
        batch.receive(right)
    assert time.monotonic() - started >= 0.04
    left.send(b"one")
    left.send(b"two")
    assert batch.receive(right) == 2  # did not wait for a whole batch


def test_frames_are_sent_from_where_they_were_read_with_changes_made_in_place(
    pair: Pair, out: Pair
) -> None:
    (left, right), (out_left, out_right) = pair, out
    for n in range(1, 6):
        left.send(datagram(n))
    right.setblocking(False)
    out_right.setblocking(False)
    batch = FrameBatch()
    assert batch.receive(right) == 5
    batch.frame(2)[0] = 0xEE
    assert batch.send(out_left, 1, 5) == 4
    assert batch.send(out_left, 2, 3) == 1  # one frame: the same, by `socket.send`
    arrived = [out_right.recv(SLOT) for _ in range(5)]
    assert arrived == [
        datagram(2),
        b"\xee" + datagram(3)[1:],
        datagram(4),
        datagram(5),
        b"\xee" + datagram(3)[1:],
    ]


def test_a_full_receiver_takes_part_of_a_send_then_its_error_is_raised(
    pair: Pair, out: Pair
) -> None:
    (left, right), (out_left, out_right) = pair, out
    for _ in range(BATCH):
        left.send(b"x" * 1000)
    right.setblocking(False)
    out_left.setblocking(False)
    # Datagrams not yet read count against the sender's buffer, here a few of them.
    out_left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8000)
    batch = FrameBatch()
    assert batch.receive(right) == BATCH
    # The send stops part way, and says how far it got.
    went = batch.send(out_left, 0, BATCH)
    assert 0 < went < BATCH
    with pytest.raises(BlockingIOError):
        batch.send(out_left, went, BATCH)
    with pytest.raises(BlockingIOError):  # one frame alone goes by `socket.send`: the same
        batch.send(out_left, went, went + 1)
    assert [out_right.recv(SLOT) for _ in range(went)] == [b"x" * 1000] * went
    assert batch.send(out_left, went, went + 1) == 1  # room again
    assert out_right.recv(SLOT) == b"x" * 1000


def test_a_batch_that_forgets_its_pages_reads_and_sends_as_before() -> None:
    inlet, rx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    tx, outlet = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    batch = FrameBatch()
    try:
        for frames in ([b"first" * 100, b"second"], [b"third" * 300]):
            for frame in frames:
                inlet.send(frame)
            count = batch.receive(rx, socket.MSG_DONTWAIT)
            assert count == len(frames)
            assert batch.send(tx, 0, count) == count
            assert [outlet.recv(4096) for _ in frames] == frames
            batch.forget()
    finally:
        for sock in (inlet, rx, tx, outlet):
            sock.close()
