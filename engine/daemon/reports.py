"""What the workers report: their stats, kept whole and as of the question, at the pace someone
watches them; and their far ends, written to the seed's traffic profile files.

A worker reports only the links that changed since its last report, ten times a second while
anyone watches (a subscriber, a listener, the recorder) and once a second otherwise; each
report is its heartbeat too (see the worker pool).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from engine.daemon.worker.supervisor_side import IDLE_STATS_INTERVAL, STATS_INTERVAL
from engine.daemon.worker_pool import WorkerHandle, WorkerPool
from engine.files.regular_files import write_atomically
from engine.model import flowtop
from engine.model.flowtop import FarEnd
from engine.model.spec import DIRECTIONS, Direction
from engine.model.stats import DirectionStats, EngineStats
from engine.protocol.control_server import ControlServer
from engine.protocol.messages import StatsPace, StatsReport, encode
from engine.timelines.recorder import TimelineRecorder

log = logging.getLogger("linkshaper")

#: Asked for stats, the reply waits at most this long for a report from each worker made after
#: the question (a worker reads a StatsPace within a few milliseconds and reports at once).
FRESH_WAIT = 0.5


class StatsReports:
    """Each direction's latest report, completed and with its worker's state."""

    def __init__(
        self,
        pool: WorkerPool,
        control: ControlServer,
        recorder: TimelineRecorder | None,
        labels: Callable[[], set[str]],
    ) -> None:
        """`labels`: the links of the spec in force (a report keeps only those)."""
        self._pool = pool
        self._control = control
        self._recorder = recorder
        self._labels = labels
        self._latest: dict[Direction, DirectionStats] = {}
        #: Whether workers report fast (see `pace`: the recorder watches from the start,
        #: clients as ControlServer says they come and go), and when each direction's latest
        #: report came (see `stats`).
        self.watched = recorder is not None
        self._pace_lock = threading.Lock()
        self._reported = threading.Condition()
        self._reported_at: dict[Direction, float] = {}

    def take(self, report: StatsReport, worker: WorkerHandle) -> None:
        """A worker's report: completed, kept, recorded and published."""
        message = StatsReport(stats=self._as_seen(self._complete(report.stats), worker))
        with self._reported:
            self._latest[worker.direction] = message.stats
            # When the worker made it (one clock for the host's processes): a report
            # on its way while a client asked is not one made after the question.
            self._reported_at[worker.direction] = message.stats.at
            self._reported.notify_all()
        if self._recorder is not None:
            self._recorder.take(message)
        self._control.publish(message)

    def publish_state(self, worker: WorkerHandle) -> None:
        """Tell watchers (a stream, the TUI) a worker's new state, with its last figures."""
        with self._reported:
            latest = self._latest.get(worker.direction)
        if latest is not None:
            stats = self._as_seen(latest, worker).model_copy(
                update={"at": time.monotonic(), "delay_samples": 0}
            )
            self._control.publish(StatsReport(stats=stats))

    @staticmethod
    def _as_seen(stats: DirectionStats, worker: WorkerHandle) -> DirectionStats:
        """A worker's figures with what only the supervisor knows: the worker's state."""
        return stats.model_copy(update={"worker_state": worker.state,
                                        "worker_stalls": worker.stalls})  # fmt: skip

    def _complete(self, stats: DirectionStats) -> DirectionStats:
        """A worker's report with every link of the spec in force: it sends only the links
        that changed, the rest are as in its report before."""
        if not stats.flows_changed_only:
            return stats
        before = self._latest.get(stats.direction)
        flows = dict(before.flows) if before is not None and before.pid == stats.pid else {}
        flows.update(stats.flows)
        labels = self._labels()
        if len(flows) > len(labels) or not flows.keys() <= labels:
            flows = {label: link for label, link in flows.items() if label in labels}
        return stats.model_copy(update={"flows": flows, "flows_changed_only": False})

    def pace(self, report_now: bool = False) -> None:
        """Fast stats while anyone watches (a subscriber, a listener, the recorder), slow
        otherwise, idle or not (see the worker). With `report_now`, the workers are told the
        pace even if it is the same: each reports at once."""
        with self._pace_lock:
            watched = self._control.watchers > 0 or self._recorder is not None
            if watched == self.watched and not report_now:
                return
            self.watched = watched
            self._pool.send_all(self.pace_message())

    def pace_message(self) -> bytes:
        """What tells a worker the pace now."""
        return encode(StatsPace(interval=STATS_INTERVAL if self.watched else IDLE_STATS_INTERVAL))

    def stats(self) -> EngineStats:
        """Both directions' figures as of the question: each worker is asked to report at
        once, and the reply waits for those reports (at most FRESH_WAIT). A script that sent
        traffic and asks finds it counted, however slowly workers report while nobody
        watches (once a second: a report built cold costs the worker some 0.7 ms)."""
        asked = time.monotonic()
        self.pace(report_now=True)
        self._fresh_reports(asked)
        with self._reported:
            latest = dict(self._latest)
        workers = self._pool.workers
        seen = {d: self._as_seen(stats, workers[d]) for d, stats in latest.items()}
        return EngineStats(ingress=seen.get("ingress"), egress=seen.get("egress"))

    def _fresh_reports(self, since: float, timeout: float = FRESH_WAIT) -> None:
        """Until every running worker has made a report after `since`, or `timeout` (a worker
        that is restarting or stuck must not hold the client up). Called from control threads:
        the loop that reads the workers' reports must be free."""
        self._pool.wait_until(
            self._reported,
            lambda worker: self._reported_at.get(worker.direction, -1.0) < since,
            since + timeout,
        )


class TrafficProfiles:
    """The far ends each worker remembers, and the profile files made of them (the seed's
    flowtop, see `engine.model.flowtop`), kept up to date about once a second."""

    def __init__(self, paths: tuple[str, str] | None) -> None:
        """`paths`: the ingress and egress profile files, or none."""
        self.paths: dict[Direction, str] = (
            dict(zip(DIRECTIONS, paths, strict=True)) if paths else {}
        )
        self._far_ends: dict[Direction, list[FarEnd]] = {d: [] for d in DIRECTIONS}
        self._failed: set[Direction] = set()

    def start(self) -> None:
        for direction in self.paths:
            self._write(direction)  # there from the start, as the seed's are

    def take(self, direction: Direction, far_ends: list[FarEnd]) -> None:
        self._far_ends[direction] = far_ends
        self._write(direction)

    def profile(self, direction: Direction) -> bytes:
        return flowtop.profile(self._far_ends[direction])

    def _write(self, direction: Direction) -> None:
        """The profile file of `direction`, if one was named, replaced whole (a reader never
        sees half); not flushed to disk: it is a live view, made afresh each second."""
        path = self.paths.get(direction)
        if path is None:
            return
        try:
            write_atomically(path, flowtop.profile(self._far_ends[direction]), durable=False)
        except OSError as exc:
            if direction not in self._failed:
                log.error("cannot write the %s profile %s: %s", direction, path, exc.strerror)
            self._failed.add(direction)
        else:
            self._failed.discard(direction)
