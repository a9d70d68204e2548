"""The worker's loop: forward while both interfaces are up, each round a wait (the strategy
chosen from what the pipeline holds and whether frames stream, see `engine.daemon.worker.waits`)
followed by the supervisor's message if one came, the releases that fell due, and the stats
when they are due; when an interface goes down or away, wait for both and go on.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from engine.core.wake_margin import CEILING, WakeMargin
from engine.daemon.channel import Outbox
from engine.daemon.worker.forwarder import Forwarder
from engine.daemon.worker.intake import clock_at_most
from engine.daemon.worker.supervisor_side import BUILD_PAUSE, FATE_BATCH
from engine.daemon.worker.waits import DEFER_MIN, STREAM_HOLD
from engine.kernel.interface_state import LINK_ERRNOS
from engine.protocol.messages import Flush, StatsPace


def run_forwarder(forwarder: Forwarder, conn: Connection) -> None:
    """Forward while both interfaces are up; when one goes down or away (a read or a send
    says so), close both sockets, wait for both to be up again, open them afresh, and go on.
    What the links hold stays held meanwhile, and the spec keeps following the supervisor,
    whose messages are read from `conn`; the worker's go up through an `Outbox` on it."""
    outbox = Outbox(conn)
    try:
        _forward(forwarder, conn, outbox)
    finally:
        outbox.close()


def _forward(forwarder: Forwarder, conn: Connection, outbox: Outbox) -> None:
    while True:
        if forwarder.interface_state == "up":
            try:
                _loop(forwarder, conn, outbox)
                return
            except OSError as exc:
                if exc.errno not in LINK_ERRNOS:
                    raise
                forwarder.lose_interfaces()
                forwarder.note(
                    "warning",
                    f"{exc.strerror} on {forwarder.rx_ifname} or {forwarder.tx_ifname}: "
                    "both sockets closed until both are up",
                )
        if not forwarder.wait_for_interfaces(conn, outbox):
            return


@dataclass(slots=True)
class _Rounds:
    """What the loop keeps from one round to the next."""

    #: When the next stats report is due.
    next_stats: float
    #: Frames seen by the last stats report, and by the last round (to tell when traffic was).
    reported_frames: int
    seen_frames: int
    last_traffic: float


def _loop(forwarder: Forwarder, conn: Connection, outbox: Outbox) -> None:
    """Two ways to wait. Holding frames, or idle: `select` on the socket and the pipe, with a
    timeout to the next release (exact, microseconds) or the next stats
    (`Forwarder.sleep_until_due`); a delay line that holds frames has a shorter round of its
    own (`Forwarder.stream_line`). Streaming (frames went by in the last STREAM_HOLD and
    nothing is held): a blocking read, which wakes faster and costs two system calls less per
    frame than `select` plus a non-blocking read, with the pipe looked at every CONTROL_POLL."""
    pipeline = forwarder.pipeline
    rx = forwarder.rx
    # File numbers: `select` calls fileno() (Python code, for a Connection) on anything else.
    rx_fd, conn_fd = rx.fileno(), conn.fileno()
    watched_pipe = [conn_fd]
    rounds = _Rounds(time.monotonic(), -1, pipeline.frames_seen, -STREAM_HOLD)
    streaming = False
    # By default a worker sleeps until a release is due (a timer is never early), so it never
    # polls; `--precise` wakes as early as this machine's timers run late, and polls the rest.
    margin = WakeMargin(time.monotonic(), ceiling=CEILING) if forwarder.precise else None
    while True:
        now = time.monotonic()
        building = pipeline.building  # then no long waits: build between short rounds
        stream = (
            now - rounds.last_traffic < STREAM_HOLD
            and pipeline.idle
            and not building
            # (streaming sends, and blocks: not while the kernel forwards or is handed over)
            and not forwarder.kernel_forwards
            and forwarder.handing_over_since is None
        )
        if stream != streaming:
            rx.setblocking(stream)
            streaming = stream
        if streaming:
            if pipeline.straight:
                forwarder.stream_straight(conn, rounds.next_stats, rounds.last_traffic)
            else:
                forwarder.stream_classified(conn, rounds.next_stats, rounds.last_traffic)
            # select() itself: Connection.poll builds a selector object on every call.
            control = bool(select.select(watched_pipe, [], [], 0)[0])
        elif (
            margin is None
            and pipeline.delay_line is not None
            and pipeline.read_slack >= DEFER_MIN
            and not pipeline.idle
            and not building
        ):  # (with `--precise`, the round below: it polls before releases)
            forwarder.stream_line(conn_fd, rounds.next_stats)
            control = bool(select.select(watched_pipe, [], [], 0)[0])
        else:
            # While a plan is built, a pause between slices: a worker that never sleeps
            # waits behind every other busy process, frames it holds too (issue 38).
            due = min(now + BUILD_PAUSE, rounds.next_stats) if building else rounds.next_stats
            control = forwarder.sleep_until_due(now, rx_fd, conn_fd, due, margin)
        if not _after_waking(forwarder, conn, outbox, rounds, control):
            return


def _after_waking(
    forwarder: Forwarder, conn: Connection, outbox: Outbox, rounds: _Rounds, control: bool
) -> bool:
    """The rest of a round: the supervisor's message (`control`: one waits), what fell due,
    a capture's records once FATE_BATCH wait, and the stats when due. False to stop (told
    to, or the supervisor is gone)."""
    pipeline = forwarder.pipeline
    now = clock_at_most()
    if pipeline.building and forwarder.build_staged(now):
        forwarder.acknowledge(outbox, None)
    flushed = False
    if control:
        message = forwarder.receive(conn)
        if not forwarder.control(message, now):
            return False
        flushed = isinstance(message, Flush) and message.direction in (None, forwarder.direction)
        # Before the acknowledgement: once a change is said to be in force, the engine forwards.
        forwarder.follow_fast_path(now, flushed)
        forwarder.acknowledge(outbox, message)
        if isinstance(message, StatsPace):
            rounds.next_stats = now  # at once: someone asked, or started watching
    if pipeline.frames_seen != rounds.seen_frames:
        rounds.seen_frames = pipeline.frames_seen
        rounds.last_traffic = now
    forwarder.send_all(pipeline.release(now))
    if pipeline.fates is not None and len(pipeline.fates.records) >= FATE_BATCH:
        try:
            forwarder.send_fates(outbox)
        except OSError:
            return False
    if not flushed:
        forwarder.follow_fast_path(now)
    if now >= rounds.next_stats:
        try:
            forwarder.send_report(outbox, now)
        except OSError:
            return False
        idle = pipeline.frames_seen == rounds.reported_frames and pipeline.next_deadline() is None
        if idle:
            forwarder.trim_spares()
        rounds.reported_frames = pipeline.frames_seen
        rounds.next_stats += forwarder.stats_pace
        if rounds.next_stats < now:
            rounds.next_stats = now + forwarder.stats_pace
    return True
