"""The worker's forwarding loop without interfaces or root: the forwarder is handed Unix
datagram socket pairs for its receiver and sender, and the supervisor's end of a real pipe.
Frames are real (vnet header, Ethernet, IP); times are asserted only as floors."""

from __future__ import annotations

import base64
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

import psutil
import pytest

from engine.core.deadlines import NANOSECONDS
from engine.core.delay_line import PACKET_OVERHEAD
from engine.core.far_ends import SETTLE_SAMPLES, StraightTally
from engine.core.frames import GSO_TCPV4, VnetHeader, mark_partial_checksum
from engine.daemon.config import GivenPorts, WorkerConfig
from engine.daemon.worker.forwarder import Forwarder
from engine.daemon.worker.loop import run_forwarder
from engine.kernel.afpacket import (
    PACKET_AUXDATA,
    SO_TIMESTAMPNS,
    SOL_PACKET,
    STAMP_SPACE,
    TP_STATUS_VLAN_VALID,
    limit_blocking_reads,
)
from engine.kernel.mmsg import BATCH, CONTROL, SLOT, FrameBatch
from engine.model.fates import FORWARDED, FateRecord, unpack
from engine.model.spec import parse_spec
from engine.model.stats import DirectionStats
from engine.protocol.messages import (
    Configure,
    FateRecords,
    StartCapture,
    StatsPace,
    StatsReport,
    Stop,
    WorkerNote,
    decode,
    encode,
)
from tests.frames_helpers import tcp_frame, udp_frame

#: Bounds on waiting for what a correct forwarder does at once; never asserted as timings.
HANG = 10.0


@dataclass
class Running:
    """A forwarder in a thread: `send` frames in, `receive` what it sent out, `conn` is the
    supervisor's end of its pipe."""

    inlet: socket.socket
    outlet: socket.socket
    conn: Connection

    def send(self, frames: list[bytes]) -> None:
        for frame in frames:
            self.inlet.send(frame)

    def receive(self, count: int) -> list[bytes]:
        got: list[bytes] = []
        self.outlet.settimeout(HANG)
        while len(got) < count:
            got.append(self.outlet.recv(70_000))
        return got

    def collect(self, wait: float = 0.3) -> list[bytes]:
        """Whatever comes out until nothing has for `wait`."""
        got: list[bytes] = []
        self.outlet.settimeout(wait)
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(self.outlet.recv(70_000))
        return got

    def nothing_more(self, wait: float = 0.3) -> bool:
        self.outlet.settimeout(wait)
        try:
            self.outlet.recv(70_000)
        except TimeoutError:
            return True
        return False

    def stats_until(self, done: Any) -> DirectionStats:
        """The first stats report for which `done(stats)` holds."""
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            if self.conn.poll(0.1):
                message = decode(self.conn.recv_bytes())
                if isinstance(message, StatsReport) and done(message.stats):
                    return message.stats
        raise AssertionError("no such stats report")

    def notes(self) -> list[str]:
        found: list[str] = []
        deadline = time.monotonic() + HANG
        while not found and time.monotonic() < deadline:
            if self.conn.poll(0.1):
                message = decode(self.conn.recv_bytes())
                if isinstance(message, WorkerNote):
                    found.append(message.message)
        return found


@dataclass
class Direct:
    """A forwarder on socket pairs, called directly (no worker loop): frames go in at
    `inlet` and out at `outlet`; `worker_end` is its end of a real pipe, `supervisor_end`
    the other."""

    forwarder: Forwarder
    inlet: socket.socket
    outlet: socket.socket
    supervisor_end: Connection
    worker_end: Connection


@contextmanager
def direct(spec: dict[str, Any]) -> Iterator[Direct]:
    inlet, rx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    tx, outlet = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for sock in (rx, tx, outlet):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    limit_blocking_reads(rx)
    rx.setblocking(False)
    supervisor_end, worker_end = Pipe()
    ports = GivenPorts({"egress": (rx, tx)})
    forwarder = Forwarder(WorkerConfig("egress", "rx0", "tx0", ports=ports), parse_spec(spec))
    try:
        yield Direct(forwarder, inlet, outlet, supervisor_end, worker_end)
    finally:
        for sock in (inlet, outlet, rx, tx):
            sock.close()
        supervisor_end.close()
        worker_end.close()


@contextmanager
def forwarding(spec: dict[str, Any]) -> Iterator[Running]:
    """A forwarder in its worker loop, in a thread."""
    with direct(spec) as it:
        thread = threading.Thread(
            target=run_forwarder, args=(it.forwarder, it.worker_end), daemon=True
        )
        thread.start()
        try:
            yield Running(it.inlet, it.outlet, it.supervisor_end)
        finally:
            it.supervisor_end.send_bytes(encode(Stop()))
            thread.join(HANG)
    assert not thread.is_alive()


def numbered(count: int, **fields: Any) -> list[bytes]:
    return [udp_frame(size=100 + n, **fields) for n in range(count)]


def test_a_transparent_link_forwards_every_frame_unchanged_and_counts_it() -> None:
    frames = numbered(200)
    with forwarding({}) as run:
        run.send(frames)
        assert run.receive(len(frames)) == frames
        stats = run.stats_until(lambda s: s.total.packets_in == len(frames))
        assert stats.total.packets_out == len(frames)
        l2_bytes = sum(len(f) - 10 for f in frames)
        assert stats.total.bytes_in == stats.total.bytes_out == l2_bytes


def test_a_delayed_link_holds_every_frame_at_least_its_latency() -> None:
    with forwarding({"egress": {"latency": 40}}) as run:
        sent = time.monotonic_ns()  # integers: a floor compared exactly (see test_clock.py)
        run.send(numbered(5))
        got = run.receive(5)
        assert time.monotonic_ns() - sent >= 40_000_000
        assert got == numbered(5)


def test_a_flow_rule_drops_its_frames_and_passes_the_rest() -> None:
    spec = {"flows": [{"label": "lost", "flow": {"protocol": 17, "port_min": 9, "port_max": 9},
                       "link": {"egress": {"loss": 1.0}}}]}  # fmt: skip
    lost, kept = numbered(20, dport=9), numbered(20, dport=5001)
    with forwarding(spec) as run:
        run.send([f for pair in zip(lost, kept, strict=True) for f in pair])
        assert run.receive(len(kept)) == kept
        assert run.nothing_more()
        stats = run.stats_until(lambda s: s.total.packets_in == 40)
        assert stats.total.drops.loss == 20


def test_a_new_spec_applies_once_read_and_from_then_on() -> None:
    with forwarding({}) as run:
        run.send(numbered(3))
        assert len(run.receive(3)) == 3
        blocked = parse_spec({"egress": {"loss": 1.0}})
        run.conn.send_bytes(encode(Configure(spec=blocked)))
        # Frames go through until the worker reads the message (no reply says when): one at
        # a time until one is dropped, then every later one is.
        for n in range(20):
            probe = udp_frame(sport=100 + n)
            run.send([probe])
            if probe not in run.collect(0.5):
                break
        else:
            raise AssertionError("the new spec never applied")
        later = numbered(10, sport=7)
        run.send(later)
        assert not set(run.collect()) & set(later)
        stats = run.stats_until(lambda s: s.total.drops.loss >= 11)
        assert stats.total.packets_out == stats.total.packets_in - stats.total.drops.loss


def test_a_message_it_cannot_read_is_reported_and_forwarding_goes_on() -> None:
    with forwarding({}) as run:
        run.conn.send_bytes(b'{"type": "no such message"}')
        notes = run.notes()
        assert notes and notes[0].startswith("ignored a message")
        run.send(numbered(2))
        assert len(run.receive(2)) == 2


@pytest.mark.parametrize("size", [0, 5, 13, 60])
def test_runt_frames_do_not_stop_it(size: int) -> None:
    with forwarding({"egress": {"latency": 1}}) as run:
        run.inlet.send(udp_frame()[:size] if size else b"")
        run.send(numbered(2))
        last = numbered(2)[-1]
        got: list[bytes] = []
        while last not in got and len(got) < 3:  # the runt itself may or may not go through
            got += run.receive(1)
        assert last in got


def test_a_link_that_only_delays_holds_frames_in_bulk_in_order_and_counts_them() -> None:
    # Many batches' worth: frames are held where they were read, in runs, and sent from there.
    frames = numbered(300)
    with forwarding({"egress": {"latency": 30}}) as run:
        sent = time.monotonic_ns()  # integers: a floor compared exactly (see test_clock.py)
        run.send(frames[:150])
        first = run.receive(1)
        assert time.monotonic_ns() - sent >= 30_000_000  # a delay is a floor
        run.send(frames[150:])
        assert first + run.receive(len(frames) - 1) == frames
        stats = run.stats_until(lambda s: s.total.packets_out == len(frames))
        assert stats.total.packets_in == len(frames)
        assert stats.total.bytes_out == sum(len(f) - 10 for f in frames)
        assert stats.total.in_flight == 0 and stats.total.held_bytes == 0
        assert stats.delay_samples and stats.delay_p50_ms >= 30.0


def test_frames_held_in_bulk_keep_the_held_bytes_limit_frame_by_frame() -> None:
    # 20 frames of about 320 bytes held at once against a limit of 10 of them (each frame
    # counts with its overhead): what fits is held and forwarded, the rest dropped.
    frames = [udp_frame(size=200, sport=n) for n in range(20)]
    held = len(frames[0]) + PACKET_OVERHEAD
    with forwarding({"egress": {"latency": 200, "queue": {"held_bytes": 10 * held}}}) as run:
        run.send(frames)
        got = run.collect(0.6)
        stats = run.stats_until(lambda s: s.total.packets_in == len(frames))
        assert got == frames[: len(got)] and 0 < len(got) < len(frames)
        assert stats.total.drops.held_full == len(frames) - len(got)


def test_frames_held_in_bulk_when_a_capture_starts_are_in_it_as_forwarded() -> None:
    frames = numbered(5)
    with forwarding({"egress": {"latency": 300}}) as run:
        run.send(frames)
        time.sleep(0.05)  # read and held in bulk by now (reads wait at most 5 ms)
        run.conn.send_bytes(encode(StartCapture(snaplen=128)))
        assert run.receive(len(frames)) == frames
        records: list[FateRecord] = []
        deadline = time.monotonic() + HANG
        while len(records) < len(frames) and time.monotonic() < deadline:
            if run.conn.poll(0.1):
                message = decode(run.conn.recv_bytes())
                if isinstance(message, FateRecords):
                    records += unpack(base64.b64decode(message.data), message.labels)
        assert [r.fate for r in records] == [FORWARDED] * len(frames)
        assert [r.label for r in records] == ["default"] * len(frames)
        assert all(r.delay >= 0.3 for r in records)


def test_short_frames_held_in_bulk_keep_the_workers_memory_within_the_held_bytes_limit() -> None:
    # An hour of latency and a stream of short frames: each frame held in bulk keeps a page of
    # its batch, which counts against `queue.held_bytes`, so the limit bounds the memory held
    # (counted at 300 bytes a frame, 1 MiB would have let them keep 14 MiB of pages).
    limit = 1024 * 1024
    frames = [udp_frame(size=50, sport=n % 60000) for n in range(5000)]
    process = psutil.Process()
    before = process.memory_info().rss
    with forwarding({"egress": {"latency": "3600s", "queue": {"held_bytes": limit}}}) as run:
        for first in range(0, len(frames), 50):
            run.send(frames[first : first + 50])
            time.sleep(0.002)
        stats = run.stats_until(lambda s: s.total.packets_in == len(frames))
        grown = process.memory_info().rss - before
        assert 0 < stats.total.held_bytes <= limit
        assert stats.total.drops.held_full == len(frames) - stats.total.in_flight
        assert grown < limit + 4 * 1024 * 1024, f"{grown / 2**20:.1f} MiB"


def test_a_delay_line_round_returns_for_a_message_for_stats_and_once_nothing_is_held() -> None:
    """`stream_line` sleeps between releases: a message on the pipe or stats falling due
    wake it and end it (else the supervisor would wait), as does the line running empty."""
    with direct({"egress": {"latency": 200}}) as it:
        forwarder, worker_end = it.forwarder, it.worker_end
        it.inlet.send(udp_frame())
        forwarder.drain()
        assert forwarder.pipeline.delay_line is not None and not forwarder.pipeline.idle
        # A message: back within far less than the frame's 200 ms or the 10 s to stats.
        started = time.monotonic()
        it.supervisor_end.send_bytes(encode(Stop()))
        forwarder.stream_line(worker_end.fileno(), started + HANG)
        assert time.monotonic() - started < 0.15
        assert not forwarder.pipeline.idle  # the frame is still held: nothing was due
        worker_end.recv_bytes()
        # Stats due: back then, with the frame still held.
        started = time.monotonic()
        forwarder.stream_line(worker_end.fileno(), started + 0.05)
        assert 0.05 <= time.monotonic() - started < 0.15
        # Nothing held: back once the frame left (200 ms after it came, not before).
        forwarder.stream_line(worker_end.fileno(), time.monotonic() + HANG)
        assert forwarder.pipeline.idle
        it.outlet.settimeout(HANG)
        assert it.outlet.recv(70_000) == udp_frame()


def test_a_delay_line_reads_once_per_read_gap_not_at_every_release() -> None:
    """A dense stream through a delay line (a frame every millisecond, 50 ms): the worker
    wakes for every release, but reads new frames only at the last wake-up before half the
    latency has passed since it last read (at most DEFER_MAX, 5 ms here), never later. Every
    frame leaves, in order, none before its latency."""
    with direct({"egress": {"latency": 50}}) as it:
        forwarder, inlet, outlet = it.forwarder, it.inlet, it.outlet
        frames = numbered(150)
        sent_at: list[int] = []  # nanoseconds: the floor is compared exactly
        reads = 0
        drain = forwarder.drain

        def counted_drain(releasing: bool = False) -> bool:
            nonlocal reads
            reads += 1
            return drain(releasing)

        def send() -> None:
            for frame in frames:
                sent_at.append(time.monotonic_ns())
                inlet.send(frame)
                time.sleep(0.001)

        got: list[bytes] = []
        left_at: list[int] = []

        def receive() -> None:
            outlet.settimeout(HANG)
            with contextlib.suppress(OSError):
                while len(got) < len(frames):
                    got.append(outlet.recv(70_000))
                    left_at.append(time.monotonic_ns())

        sender = threading.Thread(target=send)
        receiver = threading.Thread(target=receive)
        try:
            receiver.start()
            sender.start()
            while not sent_at:
                time.sleep(0.001)
            started = time.monotonic()
            forwarder.drain = counted_drain  # type: ignore[method-assign]
            deadline = started + HANG
            while (
                sender.is_alive() or not forwarder.pipeline.idle
            ) and time.monotonic() < deadline:
                if forwarder.pipeline.idle:
                    forwarder.drain()
                    time.sleep(0.001)
                else:
                    forwarder.stream_line(it.worker_end.fileno(), deadline)
            elapsed = time.monotonic() - started
            receiver.join(HANG)
            assert got == frames
            latency = 50_000_000
            assert all(left - sent >= latency for left, sent in zip(left_at, sent_at, strict=True))
            # One read per 5 ms of the run at most, and a few more for its start and end;
            # reading at every release would be one per frame more (150).
            assert reads <= elapsed / 0.005 + 10, (reads, elapsed)
        finally:
            sender.join(HANG)
            with contextlib.suppress(OSError):
                outlet.shutdown(socket.SHUT_RDWR)  # wakes the receiver if it still waits
            receiver.join(HANG)


@pytest.mark.parametrize("sparse", [True, False], ids=["frame by frame", "in batches"])
def test_the_straight_path_stops_to_count_far_ends_a_slice_at_a_time(sparse: bool) -> None:
    """The far ends of the frames sent on the straight path are counted when `stream_straight`
    returns: it does once SETTLE_SAMPLES wait, not a stats window later (with stats once a
    second, as here, every frame of the window is sampled; at 170 k frames a second counting
    a window's at once stopped forwarding for 20-30 ms). Whatever the sender's pace, no call
    takes more than that slice (and the rest of its batch)."""
    frames = numbered(3 * SETTLE_SAMPLES + 40)
    with direct({}) as it:
        forwarder, pipeline = it.forwarder, it.forwarder.pipeline
        pipeline.pace_talkers(1.0)
        it.forwarder.rx.setblocking(True)  # as the worker's loop has it while streaming
        got: list[bytes] = []

        def receive() -> None:
            it.outlet.settimeout(HANG)
            with contextlib.suppress(OSError):
                while len(got) < len(frames):
                    got.append(it.outlet.recv(70_000))

        sender = threading.Thread(target=lambda: [it.inlet.send(f) for f in frames])
        receiver = threading.Thread(target=receive)
        per_call: list[int] = []
        try:
            receiver.start()
            sender.start()
            deadline = time.monotonic() + HANG
            while pipeline.frames_seen < len(frames) and time.monotonic() < deadline:
                before = pipeline.frames_seen
                forwarder.sparse = sparse
                forwarder.stream_straight(it.worker_end, deadline, time.monotonic())
                per_call.append(pipeline.frames_seen - before)
            receiver.join(HANG)
            assert got == frames
            assert sum(per_call) == len(frames)
            assert max(per_call) <= SETTLE_SAMPLES + (0 if sparse else BATCH - 1), per_call
            (talker,) = pipeline.stats(time.monotonic()).top_talkers
            assert talker.packets == len(frames)
        finally:
            sender.join(HANG)
            with contextlib.suppress(OSError):
                it.outlet.shutdown(socket.SHUT_RDWR)
            receiver.join(HANG)


def test_what_falls_due_while_a_drain_takes_frames_leaves_before_the_rest_are_taken() -> None:
    """A wake-up may read many frames, each taken through the pipeline at tens of
    microseconds: a frame that falls due meanwhile (here: already due when the drain starts)
    leaves after the first frame taken, not after all of them."""
    spec = {"flows": [{"label": "probe", "flow": {"protocol": 17, "port_min": 7, "port_max": 7},
                       "link": {"egress": {"latency": 2}}}]}  # fmt: skip
    with direct(spec) as it:
        (held,) = numbered(1, dport=7)
        it.inlet.send(held)
        it.forwarder.drain()
        assert not it.forwarder.pipeline.idle  # held for 2 ms
        time.sleep(0.01)  # due by now, and not released (as if the worker had been busy)
        others = numbered(64, dport=5001)  # the default link: out as soon as taken
        for frame in others:
            it.inlet.send(frame)
        it.forwarder.drain(releasing=True)
        it.outlet.settimeout(HANG)
        got = [it.outlet.recv(70_000) for _ in range(len(others) + 1)]
        assert got[:2] == [others[0], held]
        assert got[2:] == others[1:]


def test_with_nobody_watching_stats_go_up_once_a_second_until_asked_for() -> None:
    """A worker spends nothing on figures nobody reads: with traffic and no StatsPace it
    reports once a second; a StatsPace makes it report at once, then at that pace."""
    with forwarding({"egress": {"latency": 1}}) as run:

        def reports_while_sending(seconds: float) -> list[float]:
            seen: list[float] = []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                run.send(numbered(2))
                run.outlet.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    while True:  # what was sent, or the worker would wait to send more
                        run.outlet.recv(70_000)
                while run.conn.poll(0.01):
                    message = decode(run.conn.recv_bytes())
                    if isinstance(message, StatsReport):
                        seen.append(time.monotonic())
            return seen

        assert len(reports_while_sending(2.5)) <= 4  # the first at start, then one a second
        run.conn.send_bytes(encode(StatsPace(interval=0.1)))
        asked = time.monotonic()
        fast = reports_while_sending(1.0)
        assert fast and fast[0] - asked < 0.5  # at once (a busy machine: well within 0.5 s)
        assert len(fast) >= 5  # ten a second


def as_read(
    batch: FrameBatch,
    frames: list[bytes],
    tags: dict[int, int],
    stamped: bool,
    unstamped: int = -1,
    stamp: float = 1.0,
) -> None:
    """Put `frames` in `batch` as a packet socket's `recvmmsg` leaves them: each in its slot,
    with its auxdata (and an arrival stamp before it if `stamped`, wall-clock `stamp`, but for
    frame `unstamped`, as when stamps were turned on while it waited); the frames at the
    indexes of `tags` had an outer 802.1Q tag with that VLAN, which the kernel took off."""
    control = memoryview(batch._control)  # what the kernel writes
    for index, frame in enumerate(frames):
        batch.view[index * SLOT : index * SLOT + len(frame)] = frame
        batch.sizes[index] = len(frame)
        at = index * CONTROL
        if stamped and index != unstamped:
            struct.pack_into("QiIqq", control, at, socket.CMSG_LEN(16), socket.SOL_SOCKET,
                             SO_TIMESTAMPNS, int(stamp), int(stamp % 1 * 1e9))  # fmt: skip
            at += STAMP_SPACE
        status = TP_STATUS_VLAN_VALID if index in tags else 0
        struct.pack_into("QiIIIIHHHH", control, at, socket.CMSG_LEN(20), SOL_PACKET,
                         PACKET_AUXDATA, status, len(frame), len(frame), 10, 24,
                         tags.get(index, 0), 0)  # fmt: skip


@pytest.mark.parametrize(
    ("age", "trusted"), [(0.03, True), (0.3, True), (-1.0, False), (5.0, False)]
)
def test_a_frame_counts_from_its_kernel_stamp_however_long_it_waited_unread(
    age: float, trusted: bool
) -> None:
    """A delay line holds frames from their arrival as the kernel stamped it, also when they
    waited long in the receive buffer (a saturated worker's held 30-50 ms of frames): those
    already due leave at once. Only a stamp that cannot be right (ahead of the clock, or
    older than STAMP_WINDOW: the wall clock moved) counts as arriving when read. At 50 ms, a
    frame 0.3 s old got its latency again, and all behind it waited for it.

    The latency is a floor, compared exactly (as fractions): float sums round to nearest, and
    at some readings of the clock (1,136 s) `read + 0.010` came out below the exact sum, so a
    frame left after 9.99999999999 ms (tests/unit/test_clock.py runs this at such readings)."""
    latency = Fraction(10 / 1000.0)  # the link's latency, seconds, as the float it holds
    frames = numbered(4)
    with direct({"egress": {"latency": 10}}) as it:
        forwarder = it.forwarder
        forwarder.stamped = True
        batch = forwarder._batch
        as_read(batch, frames, {}, stamped=True, stamp=time.time() - age)
        read = time.monotonic()
        forwarder._take_batch(len(frames), read)
        due = forwarder.pipeline.next_deadline()
        assert due is not None
        if trusted:
            assert due == pytest.approx(read - age + 0.010, abs=0.002)
        else:  # from when it was read, never sooner; rounded up by less than a nanosecond
            later = time.monotonic()
            assert Fraction(read) + latency <= Fraction(due)
            assert Fraction(due) <= Fraction(later) + latency + Fraction(1, NANOSECONDS)
        it.outlet.setblocking(False)
        forwarder.send_all(forwarder.pipeline.release(max(due, time.monotonic())))
        assert [it.outlet.recv(70_000) for _ in frames] == frames
        stats = forwarder.pipeline.stats(time.monotonic())
        assert stats.total.packets_out == len(frames)
        # Exact, not approximate: each delay (release less arrival) is at least the latency,
        # and rounding to milliseconds keeps the order (10 ms in seconds, times 1000, is 10.0).
        assert stats.delay_p50_ms >= (1000 * age if trusted else 10.0)


@pytest.mark.parametrize("stamped", [False, True])
@pytest.mark.parametrize("odd", ["none", "tagged", "super", "tagged, no stamp"])
def test_a_batch_is_made_ready_as_each_of_its_frames_would_be(stamped: bool, odd: str) -> None:
    """Most receive batches need nothing done to any frame, which the worker finds a batch at
    a time and counts in bulk. One tagged frame or one super-frame among plain ones must still
    get its tag back or its checksum marked (also a tagged frame whose control messages are
    not where the others' are), and every batch is counted as counting each frame after that
    would count it (the tally the far ends and stats come from)."""
    frames = [tcp_frame(sport=40000 + n, size=100 + 37 * n) for n in range(20)]
    if odd == "super":
        header = VnetHeader(0, GSO_TCPV4, 66, 1448, 0, 0).pack()  # checksum not yet partial
        frames[7] = header + tcp_frame(size=1448 * 3)[10:]  # three wire packets' payload
    tags = {7: 82} if odd.startswith("tagged") else {}
    with direct({}) as it:
        forwarder = it.forwarder
        forwarder.stamped = stamped
        batch = FrameBatch()
        as_read(batch, frames, tags, stamped, unstamped=7 if odd == "tagged, no stamp" else -1)
        tally = StraightTally(exact=5)
        supers = forwarder._ready_to_send(batch, len(frames), tally)
        ready = [bytes(batch.frame(index)) for index in range(len(frames))]
    expected = list(frames)
    if odd.startswith("tagged"):
        tagged = frames[7]
        expected[7] = tagged[:22] + struct.pack("!HH", 0x8100, 82) + tagged[22:]
    if odd == "super":
        assert supers == [7]
        marked = bytearray(frames[7])
        mark_partial_checksum(marked)
        assert marked != frames[7]
        expected[7] = bytes(marked)
    else:
        assert supers == []
    assert ready == expected
    each = StraightTally(exact=5)
    for frame in ready:
        each.count(frame, 0, len(frame))
    assert (tally.frames, tally.plain_bytes, tally.supers, tally.sampled) == (
        each.frames,
        each.plain_bytes,
        each.supers,
        each.sampled,
    )
