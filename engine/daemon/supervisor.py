"""The supervisor: owns the spec, runs one worker process per direction, restarts them.

Workers are started with the `spawn` context so they begin clean (no inherited threads or
sockets). The spec in force lives here; every change (a control client, the HTTP API, a replay,
SIGHUP) goes through `apply`, which sends it down both pipes and tells subscribers. A worker
that says nothing for STALL_AFTER (its reports are its heartbeat) is killed and restarted; a
restart that fails is tried again with growing pauses: the supervisor ends only when told to.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

from pydantic import ValidationError

from engine.daemon import gate
from engine.daemon.channel import FrameReader
from engine.daemon.coalescing import SPEC_LOG_INTERVAL, SPEC_WRITE_INTERVAL, Coalescer
from engine.daemon.config import GivenPorts, PacketPorts, WorkerConfig
from engine.daemon.worker import IDLE_STATS_INTERVAL, STATS_INTERVAL, run_worker
from engine.kernel.interface_state import bring_up
from engine.model import flowtop
from engine.model.fates import wanted_records
from engine.model.files import write_atomically
from engine.model.flowtop import FarEnd
from engine.model.spec import (
    DIRECTIONS,
    Direction,
    Spec,
    SpecError,
    read_spec,
    seed_view,
)
from engine.model.stats import DirectionStats, EngineStats, WorkerState
from engine.model.trace import TraceError
from engine.protocol.control import CaptureFeed, ControlError, ControlServer
from engine.protocol.messages import (
    CaptureLost,
    CaptureRequest,
    CaptureToFile,
    Configure,
    Configured,
    Done,
    Error,
    FarEnds,
    FateRecords,
    Flush,
    GetInfo,
    GetProfile,
    GetSpec,
    GetStats,
    Info,
    Message,
    PatchSpec,
    ProfileReply,
    SetSpec,
    SpecChanged,
    SpecReply,
    StartCapture,
    StatsPace,
    StatsReply,
    StatsReport,
    Stop,
    StopCapture,
    StopCaptureToFile,
    Subscribe,
    WorkerError,
    WorkerNote,
    decode,
    encode,
)
from engine.timelines.recorder import TimelineRecorder

log = logging.getLogger("linkshaper")

#: A worker that cannot be started, or dies before it says a word, is tried again after this
#: long, twice as long each time after that (a worker that worked is restarted at once)...
RESTART_BACKOFF = 0.2
#: ...but at most this long apart: a failure that lasts (no descriptors left) costs a log line
#: and a try every few seconds, not a busy loop, and the worker is back soon after it ends.
RESTART_BACKOFF_MAX = 5.0
#: A worker that says nothing for this long (workers report at least every
#: IDLE_STATS_INTERVAL, their heartbeat) is stalled: logged, shown in stats, killed, restarted.
STALL_AFTER = 2.0
#: A worker just started may take this long for its first word (a spawn and its imports take
#: some 0.5 s here, seconds on a loaded machine) before it counts as stalled.
START_GRACE = 15.0
#: A message sent to a worker may keep it silent this long per byte, on top of STALL_AFTER and
#: of a change's APPLY_WAIT: reading and putting in force a spec of 10,000 flows (14 MB of
#: JSON) took a worker 3.7 s on this machine under load; this allows four times that.
SILENCE_PER_BYTE = 1e-6
#: Only a message at least this large counts (a spec of some hundred flows): a small one (a
#: stats question, a capture, a spec of a few links) is read in well under a millisecond, and
#: letting each extend the silence allowed would let anyone who polls stats hide a stall.
BUSY_FROM_BYTES = 100_000
#: A change made on a spec that another change replaced meanwhile is made again this often
#: without the lock, then once more with it (requests are bounded in size, so that is too).
CHANGE_ATTEMPTS = 20
#: The loop wakes for workers' messages, their exits and signals (a self-pipe); this is only a
#: backstop, so an idle engine costs nothing.
LOOP_TICK = 5.0
#: A change's reply waits at most this long for the workers to have it in force.
APPLY_WAIT = 2.0
#: Asked for stats, the reply waits at most this long for a report from each worker made after
#: the question (a worker reads a StatsPace within a few milliseconds and reports at once).
FRESH_WAIT = 0.5


@dataclass
class _Worker:
    direction: Direction
    rx: str
    tx: str
    process: BaseProcess | None = None
    conn: Connection | None = None
    #: Reads what the worker sends on `conn` without waiting (None once it closed its end).
    reader: FrameReader | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = 0.0
    #: When the supervisor last heard from it (its monotonic clock), and whether it has said
    #: anything since it was started.
    heard: float = 0.0
    spoke: bool = False
    state: WorkerState = "running"
    #: How often it was found stalled since the engine started.
    stalls: int = 0
    #: Starts in a row that failed or died before a word (see `_backoff`), and when to try next.
    failures: int = 0
    restart_at: float = 0.0
    #: Until when what it was sent may keep it busy (see SILENCE_PER_BYTE).
    busy_until: float = 0.0
    #: Receiver and sender handed to its forwarder instead of opening `rx` and `tx`.
    sockets: tuple[socket.socket, socket.socket] | None = None

    def send(self, data: bytes) -> None:
        with self.lock:
            if self.conn is None:
                return
            if len(data) >= BUSY_FROM_BYTES:  # queued behind what it has yet to read
                now = time.monotonic()
                self.busy_until = max(self.busy_until, now) + len(data) * SILENCE_PER_BYTE
            # If it died, the supervisor loop restarts it with the spec in force.
            with contextlib.suppress(OSError):
                self.conn.send_bytes(data)


def _why_late(worker: _Worker, stalled: bool) -> str:
    """Why `worker` has not put a change in force; `stalled`: it was found so meanwhile."""
    if stalled or worker.state == "stalled":
        return "stalled; restarting"
    if worker.state == "running":
        return f"last heard {time.monotonic() - worker.heard:.1f} s ago"
    return worker.state


def _backoff(failures: int) -> float:
    """The pause before a worker's next start after `failures` in a row: none after none."""
    if failures <= 0:
        return 0.0
    return float(min(RESTART_BACKOFF * 2 ** (failures - 1), RESTART_BACKOFF_MAX))


class FileCapture:
    """A capture written to a pcapng file by a thread of the engine's (CaptureToFile)."""

    def __init__(self, path: str, feed: CaptureFeed) -> None:
        # Here, not at the top: scapy costs the engine 0.6 s to start and tens of MB.
        from engine.captures.pcapng import CaptureWriter

        self.path = path
        self._feed = feed
        try:
            # A new file only: the name (the TUI's, by the second) may be guessed.
            self._writer = CaptureWriter(path, new_file=True)
        except OSError:
            feed.close()
            raise
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="capture-file")
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            message = self._feed.get(0.2)
            if isinstance(message, FateRecords):
                self._writer.lost_records(message.lost)
                capture = self._feed.capture
                assert capture is not None
                records = wanted_records(message.data, message.labels, capture.label,
                                         capture.drops_only)  # fmt: skip
                self._writer.write(message.direction, records)
            elif isinstance(message, CaptureLost):
                self._writer.lost_records(message.records)

    def stop(self) -> tuple[int, int]:
        """Stop and close the file; the frames written and the records lost."""
        self._stopping.set()
        self._thread.join(2.0)
        self._feed.close()
        self._writer.close()
        return self._writer.written, self._writer.lost


class Supervisor:
    def __init__(
        self,
        outer: str,
        inner: str,
        spec: Spec,
        spec_path: str | None = None,
        control_path: str | None = None,
        recorder: TimelineRecorder | None = None,
        precise: bool = False,
        sockets: Mapping[Direction, tuple[socket.socket, socket.socket]] | None = None,
        persist: bool = True,
        profiles: tuple[str, str] | None = None,
        unshaped_port: int | None = None,
    ) -> None:
        """With `persist`, every change applied is written to `spec_path` (see `_save`).
        `profiles`: the ingress and egress traffic profile files (the seed's flowtop, see
        `engine.model.flowtop`), kept up to date about once a second.
        `sockets`, for tests over socket pairs: each direction's receiver and sender, given
        to its worker instead of the interfaces (which are then neither opened nor brought
        up). `unshaped_port`: see DirectionPipeline (`run --unshaped-port`)."""
        self.outer = outer
        self.unshaped_port = unshaped_port
        #: Each Configure sent is numbered; each worker says which it has put in force.
        self._generation = 0
        self._in_force: dict[Direction, int] = {}
        self._configured = threading.Condition()
        #: Whether workers poll, for sparse frames and before releases (`run --precise`).
        self.precise = precise
        self.inner = inner
        self.spec_path = spec_path
        self.persist = persist
        self.profiles: dict[Direction, str] = (
            dict(zip(DIRECTIONS, profiles, strict=True)) if profiles else {}
        )
        self._far_ends: dict[Direction, list[FarEnd]] = {d: [] for d in DIRECTIONS}
        self._profile_failed: set[Direction] = set()
        self.control_path = control_path
        self._spec = spec
        #: The spec in force with the trace files it was admitted with (one object, so a change
        #: reads both at once; `_commit` replaces it).
        self._admitted = gate.admitted_at_start(spec)
        self._spec_lock = threading.RLock()  # held only to put a checked spec in force
        self._context = multiprocessing.get_context("spawn")
        given = sockets or {}
        self._workers = {
            "ingress": _Worker("ingress", outer, inner, sockets=given.get("ingress")),
            "egress": _Worker("egress", inner, outer, sockets=given.get("egress")),
        }
        self._latest: dict[str, DirectionStats] = {}
        # The hub every client talks to; it listens on a socket only if there is a path.
        self._control = ControlServer(
            control_path, self.handle, self._captures_changed, on_watchers=self._pace_stats
        )
        #: What each worker is told to capture now (None: nothing), for restarts.
        self._capturing: dict[Direction, StartCapture | None] = dict.fromkeys(DIRECTIONS)
        self._capture_lock = threading.Lock()
        self._file_capture: FileCapture | None = None
        self._file_lock = threading.Lock()  # not _capture_lock: opening a capture takes that
        self._stopping = threading.Event()
        # Signals and stop() write here, so the loop wakes at once without polling.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._reload_requested = False
        self.recorder = recorder
        #: Whether workers report fast (see `_pace_stats`: the recorder watches from the start,
        #: clients as ControlServer says they come and go), and when each direction's latest
        #: report came (see `stats`).
        self._watched = recorder is not None
        self._pace_lock = threading.Lock()
        self._reported = threading.Condition()
        self._reported_at: dict[Direction, float] = {}
        #: Called first at shutdown (the HTTP server's stop).
        self.on_shutdown: list[Callable[[], None]] = []
        #: Changes come as fast as a replay makes them; the file and the log follow at a pace.
        self._spec_file = Coalescer(SPEC_WRITE_INTERVAL, self._write_spec_file, "spec-file")
        self._applied_log = Coalescer(SPEC_LOG_INTERVAL, self._log_applied, "spec-log")

    @property
    def spec(self) -> Spec:
        return self._spec

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self.recorder is not None:
            self.recorder.spec(self._spec, "start")
        for direction in self.profiles:
            self._write_profile(direction)  # there from the start, as the seed's are
        if not all(worker.sockets for worker in self._workers.values()):
            for ifname in (self.outer, self.inner):
                bring_up(ifname)
        for worker in self._workers.values():
            self._spawn(worker)
        self._control.start()
        # What exists now (modules, pydantic's validators: some 50 000 objects) lives as long
        # as the process. Out of the cyclic collector's way, its full passes take well under a
        # millisecond instead of 15-20 ms, which would hold up a change applied meanwhile.
        gc.freeze()

    def _spawn(self, worker: _Worker) -> None:
        """Start `worker`'s process with the spec in force; OSError (and nothing left open)
        if it cannot be started (`_restart` tries again)."""
        parent, child = self._context.Pipe()
        try:
            reader = FrameReader(parent)
        except OSError:
            parent.close()
            child.close()
            raise
        process = self._context.Process(
            target=run_worker,
            args=(
                WorkerConfig(
                    worker.direction,
                    worker.rx,
                    worker.tx,
                    self.precise,
                    self.unshaped_port,
                    GivenPorts({worker.direction: worker.sockets})
                    if worker.sockets
                    else PacketPorts(),
                ),
                self._spec.model_dump_json(),
                json.dumps({k: v.model_dump() for k, v in self._admitted.trace_files.items()}),
                child,
            ),
            name=f"linkshaper-{worker.direction}",
            daemon=True,
        )
        try:
            process.start()
        except BaseException:
            reader.close()
            parent.close()
            raise
        finally:
            child.close()
        with worker.lock:
            worker.process, worker.conn, worker.reader = process, parent, reader
            worker.started = worker.heard = time.monotonic()
            worker.spoke = False
        # A change that raced with the spawn must not be lost: send what is in force now.
        worker.send(encode(self._configure()))
        if self._watched:
            worker.send(encode(StatsPace(interval=STATS_INTERVAL)))
        with self._capture_lock:
            capture = self._capturing[worker.direction]
        if capture is not None:
            worker.send(encode(capture))

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGHUP, self._on_sighup)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"!")

    def _on_sighup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload_requested = True
        self._wake()

    def _on_stop_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self._stopping.set()
        self._wake()

    def stop(self) -> None:
        self._stopping.set()
        self._wake()

    def listen(self, callback: Callable[[Message], None]) -> Callable[[], None]:
        """Every published message, in this process (see ControlServer.listen)."""
        return self._control.listen(callback)

    def serve(self, conn: Connection, stop_on_close: bool = False) -> None:
        """Answer control requests on a connection (a Pipe end) as on the socket."""
        self._control.serve(conn, self.stop if stop_on_close else None)

    def run(self) -> None:
        """Serve until stopped: read stats, restart dead workers, reload on SIGHUP."""
        try:
            while not self._stopping.is_set():
                if self._reload_requested:
                    self._reload_requested = False
                    self.reload()
                self._poll_workers(LOOP_TICK)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for stop in self.on_shutdown:
            stop()
        self._spec_file.close()  # the latest change on disk: a restart starts with it
        self._applied_log.close()
        if self._file_capture is not None:
            self._stop_capture_to_file()
        if self.recorder is not None:
            self.recorder.close()
        self._control.close()
        for worker in self._workers.values():
            worker.send(encode(Stop()))
        deadline = time.monotonic() + 2.0
        for worker in self._workers.values():
            if worker.process is not None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join(1.0)
            self._close_pipe(worker)

    def _poll_workers(self, timeout: float) -> None:
        """Wait for what the workers say, their exits, a signal, or the next moment a worker
        must be looked at (`_next_look`); then read, and tend each worker (`_tend`)."""
        handles: dict[Connection | int, _Worker] = {}
        now = time.monotonic()
        for worker in self._workers.values():
            if worker.conn is not None and worker.reader is not None:
                handles[worker.conn] = worker
            if worker.process is not None and worker.state != "restarting":
                handles[worker.process.sentinel] = worker  # (a dead one's stays readable)
            timeout = min(timeout, self._next_look(worker) - now)
        ready = wait([*handles, self._wake_r], max(0.0, timeout))
        for handle in ready:
            if handle == self._wake_r:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.read(self._wake_r, 512)
                continue
            worker = handles[handle]  # type: ignore[index]
            if handle is worker.conn:
                self._read_worker(worker)
        now = time.monotonic()
        for worker in self._workers.values():
            if self._stopping.is_set():
                return
            self._tend(worker, now)

    def _next_look(self, worker: _Worker) -> float:
        """When the loop must look at `worker` even if nothing happens: when its restart is
        due, or when it would count as stalled (never sooner: an idle engine stays asleep)."""
        if worker.state == "restarting":
            return worker.restart_at
        if worker.process is None or worker.state == "stalled":
            return float("inf")  # (a stalled one was killed: its exit wakes the loop)
        if not worker.spoke:
            return worker.heard + START_GRACE
        return max(worker.heard, worker.busy_until) + STALL_AFTER

    def _tend(self, worker: _Worker, now: float) -> None:
        """Restart a worker that exited (at once if it had worked, else after `_backoff`),
        and kill one that is stalled."""
        process = worker.process
        if process is None:
            return
        if worker.state != "restarting" and not process.is_alive():
            self._lost(worker, now)
        if worker.state == "restarting":
            if now >= worker.restart_at:
                self._restart(worker)
        elif worker.state == "running" and now >= self._next_look(worker):
            self._stalled(worker, now)

    def _stalled(self, worker: _Worker, now: float) -> None:
        """Kill a worker silent for too long (SIGKILL: a stopped process cannot catch it); its
        exit restarts it. Changes waiting for it are told at once (`_await_workers`)."""
        assert worker.process is not None
        worker.state = "stalled"
        worker.stalls += 1
        log.error(
            "%s worker (pid %s) silent for %.1f s: stalled; killing and restarting it",
            worker.direction, worker.process.pid, now - worker.heard,
        )  # fmt: skip
        with contextlib.suppress(OSError):
            worker.process.kill()
        self._publish_state(worker)
        with self._configured:
            self._configured.notify_all()

    def _lost(self, worker: _Worker, now: float) -> None:
        """A worker's process ended: close its pipe, and restart it when `_backoff` says."""
        assert worker.process is not None
        stalled = worker.state == "stalled"
        self._close_pipe(worker)
        pause = _backoff(worker.failures)
        worker.failures += 1
        worker.state, worker.restart_at = "restarting", now + pause
        why = "was stalled and is killed" if stalled else (
            f"exited with code {worker.process.exitcode}"
        )  # fmt: skip
        log.warning(
            "%s worker (pid %s) %s; restarting%s", worker.direction, worker.process.pid, why,
            f" in {pause:.1f} s" if pause else "",
        )  # fmt: skip
        self._publish_state(worker)
        with self._configured:
            self._configured.notify_all()

    def _close_pipe(self, worker: _Worker) -> None:
        with worker.lock:
            if worker.reader is not None:
                worker.reader.close()
                worker.reader = None
            if worker.conn is not None:
                worker.conn.close()
                worker.conn = None

    def _publish_state(self, worker: _Worker) -> None:
        """Tell watchers (a stream, the TUI) a worker's new state, with its last figures."""
        with self._reported:
            latest = self._latest.get(worker.direction)
        if latest is not None:
            stats = self._as_seen(latest, worker).model_copy(
                update={"at": time.monotonic(), "delay_samples": 0}
            )
            self._control.publish(StatsReport(stats=stats))

    def _as_seen(self, stats: DirectionStats, worker: _Worker) -> DirectionStats:
        """A worker's figures with what only the supervisor knows: the worker's state."""
        return stats.model_copy(update={"worker_state": worker.state,
                                        "worker_stalls": worker.stalls})  # fmt: skip

    def _read_worker(self, worker: _Worker) -> None:
        reader = worker.reader
        if reader is None:
            return
        try:
            frames = reader.read()
        except (EOFError, OSError):  # its end closed: it is ending (its exit restarts it)
            with worker.lock:
                worker.reader = None
            reader.close()
            return
        if frames and worker.process is not None:
            worker.heard = time.monotonic()
            if not worker.spoke:
                worker.spoke, worker.failures = True, 0
        for data in frames:
            try:
                message = decode(data)
            except ValidationError:
                continue
            if isinstance(message, StatsReport):
                message = StatsReport(stats=self._as_seen(self._complete(message.stats), worker))
                with self._reported:
                    self._latest[worker.direction] = message.stats
                    # When the worker made it (one clock for the host's processes): a report
                    # on its way while a client asked is not one made after the question.
                    self._reported_at[worker.direction] = message.stats.at
                    self._reported.notify_all()
                if self.recorder is not None:
                    self.recorder.stats(message.stats)
                self._control.publish(message)
            elif isinstance(message, FarEnds):
                self._far_ends[message.direction] = message.far_ends
                self._write_profile(message.direction)
            elif isinstance(message, FateRecords):
                self._control.publish(message)
            elif isinstance(message, Configured):
                with self._configured:
                    self._in_force[message.direction] = message.generation
                    self._configured.notify_all()
            elif isinstance(message, WorkerError):
                log.error("%s worker: %s", message.direction, message.message)
            elif isinstance(message, WorkerNote):
                level = logging.INFO if message.level == "info" else logging.WARNING
                log.log(level, "%s: %s", message.direction, message.message)

    def _complete(self, stats: DirectionStats) -> DirectionStats:
        """A worker's report with every link of the spec in force: it sends only the links
        that changed, the rest are as in its report before."""
        if not stats.flows_changed_only:
            return stats
        before = self._latest.get(stats.direction)
        flows = dict(before.flows) if before is not None and before.pid == stats.pid else {}
        flows.update(stats.flows)
        labels = {"default", *(flow.label for flow in self._spec.flows)}
        if len(flows) > len(labels) or not flows.keys() <= labels:
            flows = {label: link for label, link in flows.items() if label in labels}
        return stats.model_copy(update={"flows": flows, "flows_changed_only": False})

    def _pace_stats(self, report_now: bool = False) -> None:
        """Fast stats while anyone watches (a subscriber, a listener, the recorder), slow
        otherwise, idle or not (see the worker). With `report_now`, the workers are told the
        pace even if it is the same: each reports at once."""
        with self._pace_lock:
            watched = self._control.watchers > 0 or self.recorder is not None
            if watched == self._watched and not report_now:
                return
            self._watched = watched
            data = encode(StatsPace(interval=STATS_INTERVAL if watched else IDLE_STATS_INTERVAL))
            for each in self._workers.values():
                each.send(data)

    def _fresh_reports(self, since: float, timeout: float = FRESH_WAIT) -> None:
        """Until every running worker has made a report after `since`, or `timeout` (a worker
        that is restarting or stuck must not hold the client up). Called from control threads:
        the loop that reads the workers' reports must be free."""
        self._until_workers(
            self._reported,
            lambda worker: self._reported_at.get(worker.direction, -1.0) < since,
            since + timeout,
        )

    def _restart(self, worker: _Worker) -> None:
        """Start a worker again; a failure (no descriptors left, no memory for a process) is
        logged and tried again after `_backoff`: the supervisor ends only when told to."""
        try:
            self._spawn(worker)
        except Exception as exc:  # whatever it is, the link must not go down for it
            pause = _backoff(worker.failures)
            worker.failures += 1
            worker.restart_at = time.monotonic() + pause
            log.error(
                "%s worker cannot be restarted: %s; trying again in %.1f s",
                worker.direction, exc, pause,
            )  # fmt: skip
            return
        worker.state = "running"
        assert worker.process is not None
        log.warning("%s worker restarted as pid %s", worker.direction, worker.process.pid)

    # --- the spec ------------------------------------------------------------------------

    def apply(self, admitted: gate.Admitted, source: str) -> Spec:
        """Put a spec the gate admitted in force: both workers, then everyone who listens."""
        with self._spec_lock:
            return self._commit(admitted, source)

    def _configure(self) -> Configure:
        """What tells a worker the spec in force (and the trace files it was admitted with)."""
        admitted = self._admitted
        return Configure(
            spec=admitted.spec, generation=self._generation,
            trace_files=dict(admitted.trace_files),
        )  # fmt: skip

    def _commit(self, admitted: gate.Admitted, source: str) -> Spec:
        """`apply` with the lock held."""
        spec = admitted.spec
        self._admitted = admitted
        self._spec = spec
        self._generation += 1
        data = encode(self._configure())
        for worker in self._workers.values():
            worker.send(data)
        if self.recorder is not None:
            self.recorder.spec(spec, source)
        self._control.publish(SpecChanged(spec=spec, source=source, at=time.time()))
        self._applied_log.submit(source)
        if source != "sighup":
            self._save(spec)
        else:  # what the file says already: an older change still to write would undo it
            self._spec_file.discard()
        return spec

    @staticmethod
    def _log_applied(source: str, count: int) -> None:
        """One line for a change, one for a burst of them (a fast replay: hundreds a second)."""
        if count == 1:
            log.info("spec applied (from %s)", source)
        else:
            log.info("spec applied %d times (the latest from %s)", count, source)

    def _save(self, spec: Spec) -> None:
        """Have the spec in force written to the spec file, so that a SIGHUP or a restart keeps
        it (the seed's frontend wrote the file too): a lone change before this returns, a burst
        at most every SPEC_WRITE_INTERVAL, the latest always, at the latest at shutdown."""
        if not self.spec_path or not self.persist:
            return
        self._spec_file.submit(spec)

    @property
    def spec_file_writes(self) -> int:
        """How often the spec file was written since the start (fewer than changes in a
        burst: see `_save`)."""
        return self._spec_file.actions

    def _write_spec_file(self, spec: Spec, _changes: int) -> None:
        """In the seed's shape (`seed_view`), which its engine reads unless extensions are set,
        replaced whole (`write_atomically`). A failure is logged; the change stays in force."""
        assert self.spec_path is not None
        text = json.dumps(seed_view(spec), indent=2) + "\n"
        try:
            write_atomically(self.spec_path, text.encode())
        except OSError as exc:
            log.error(
                "cannot save the spec to %s: %s (it is in force; a restart would lose it)",
                self.spec_path, exc.strerror or exc,
            )  # fmt: skip

    def reload(self) -> bool:
        """Re-read the spec file (SIGHUP). A bad file is reported and the spec stays."""
        if not self.spec_path:
            log.warning("SIGHUP: no spec file to reload")
            return False
        try:
            admitted = gate.reloaded(read_spec(self.spec_path), self._admitted)
        except (SpecError, TraceError) as exc:
            log.error("SIGHUP: %s: %s; keeping the spec in force", self.spec_path, exc)
            return False
        self.apply(admitted, "sighup")
        return True

    def change(self, make: Callable[[gate.Admitted], gate.Admitted], source: str) -> Message:
        """Apply `make(spec in force)`, answered once both workers have it in force (see
        `_await_workers`), so that whoever changed the link can send at once."""
        reply = self._change(make, source)
        if isinstance(reply, SpecReply):
            late = self._await_workers(self._generation)
            if late:  # the spec in force is the new one: a worker back takes it at once
                kept = "; ".join(late) + "; the change is kept and is in force once it is back"
                return Error(message=kept, not_in_force=True)
        return reply

    def _await_workers(self, generation: int, timeout: float = APPLY_WAIT) -> list[str]:
        """Until every worker has put `generation` (or a later one) in force, or `timeout`,
        or until one it waits for is found stalled (it cannot be before it is restarted):
        for each that has not, a line that says so and why (empty if all have). A worker that
        is restarting counts once it has (it gets the spec when it starts). Called from
        control threads: the loop that reads the workers' answers must be free."""
        started = time.monotonic()
        stalls = {worker.direction: worker.stalls for worker in self._workers.values()}
        # A large change may keep a worker busy for longer (see SILENCE_PER_BYTE).
        busy = max(worker.busy_until for worker in self._workers.values())
        timeout += max(0.0, busy - started)
        with self._configured:
            while True:
                behind = [
                    w for w in self._workers.values()
                    if w.process is not None and self._in_force.get(w.direction, -1) < generation
                ]  # fmt: skip
                given_up = any(w.stalls != stalls[w.direction] for w in behind)
                left = started + timeout - time.monotonic()
                if not behind or given_up or left <= 0 or self._stopping.is_set():
                    break
                self._configured.wait(left)
        waited = time.monotonic() - started
        late = [
            f"{w.direction} worker: change not in force after {waited:.1f} s "
            f"({_why_late(w, w.stalls != stalls[w.direction])})"
            for w in behind
        ]
        for line in late:
            log.warning("%s", line)
        return late

    def _until_workers(
        self, condition: threading.Condition, behind: Callable[[_Worker], bool], deadline: float
    ) -> list[Direction]:
        """Wait on `condition` (which guards what `behind` reads) until no running worker is
        `behind`, or until `deadline`; the directions still behind then."""
        with condition:
            while True:
                waiting = [
                    w.direction for w in self._workers.values()
                    if w.conn is not None and w.process is not None and w.process.is_alive()
                    and behind(w)
                ]  # fmt: skip
                left = deadline - time.monotonic()
                if not waiting or left <= 0:
                    return waiting
                condition.wait(left)

    def _change(self, make: Callable[[gate.Admitted], gate.Admitted], source: str) -> Message:
        """`make` is the gate (`gate.admit`: validation, the trace policy, reading traces); it
        runs without the lock, which a slow or huge request must never hold (SIGHUP and the
        workers' restarts wait for it); if the spec changed meanwhile, the change is made again
        on the new one."""
        for _ in range(CHANGE_ATTEMPTS):
            base = self._admitted
            try:
                admitted = make(base)
            except (SpecError, TraceError) as exc:
                return Error(message=str(exc))
            with self._spec_lock:
                if self._admitted is base:
                    return SpecReply(spec=self._commit(admitted, source))
        with self._spec_lock:  # under heavy contention: one more time, holding the lock
            try:
                admitted = make(self._admitted)
            except (SpecError, TraceError) as exc:
                return Error(message=str(exc))
            return SpecReply(spec=self._commit(admitted, source))

    def handle(self, request: Message) -> Message:
        """Answer one control request (called from control threads)."""
        if isinstance(request, Subscribe) and request.capture is not None:
            refused = self._refuse_capture(request.capture)
            return refused or Done(message="capturing")
        if isinstance(request, GetSpec | Subscribe):
            return SpecReply(spec=self._spec)
        if isinstance(request, SetSpec | PatchSpec):  # every door's change: one gate
            change = request
            return self.change(lambda base: gate.admit(change, base), request.source)
        if isinstance(request, Flush):
            return self.flush(request)
        if isinstance(request, CaptureToFile):
            return self._capture_to_file(request)
        if isinstance(request, StopCaptureToFile):
            return self._stop_capture_to_file()
        if isinstance(request, GetStats):
            return StatsReply(stats=self.stats())
        if isinstance(request, GetInfo):
            return self.info()
        if isinstance(request, GetProfile):
            data = flowtop.profile(self._far_ends[request.direction])
            return ProfileReply(direction=request.direction, data=base64.b64encode(data).decode())
        return Error(message=f"not a request: {request.type}")

    def _write_profile(self, direction: Direction) -> None:
        """The profile file of `direction`, if one was named, replaced whole (a reader never
        sees half); not flushed to disk: it is a live view, made afresh each second."""
        path = self.profiles.get(direction)
        if path is None:
            return
        try:
            write_atomically(path, flowtop.profile(self._far_ends[direction]), durable=False)
        except OSError as exc:
            if direction not in self._profile_failed:
                log.error("cannot write the %s profile %s: %s", direction, path, exc.strerror)
            self._profile_failed.add(direction)
        else:
            self._profile_failed.discard(direction)

    def _labels(self) -> set[str]:
        return {"default", *(flow.label for flow in self._spec.flows)}

    def _refuse_capture(self, request: CaptureRequest) -> Error | None:
        if request.label is not None and request.label not in self._labels():
            return Error(message=f"link: no link labelled {request.label!r}")
        return None

    def capture(self, request: CaptureRequest) -> CaptureFeed:
        """A capture read in this process (the HTTP API's); ControlError for a bad request."""
        refused = self._refuse_capture(request)
        if refused is not None:
            raise ControlError(refused.message)
        return self._control.open_capture(request)

    def _capture_to_file(self, request: CaptureToFile) -> Message:
        refused = self._refuse_capture(request.capture)
        if refused is not None:
            return refused
        with self._file_lock:
            if self._file_capture is not None:
                return Error(message=f"path: a capture to {self._file_capture.path} runs already")
            try:
                capture = FileCapture(request.path, self.capture(request.capture))
            except OSError as exc:
                return Error(message=f"path: {request.path}: {exc.strerror}")
            self._file_capture = capture
        log.info("capturing to %s", request.path)
        return Done(message=f"capturing to {request.path}")

    def _stop_capture_to_file(self) -> Message:
        with self._file_lock:
            capture, self._file_capture = self._file_capture, None
        if capture is None:
            return Error(message="no capture to a file runs")
        written, lost = capture.stop()
        said = f"{written} frames written to {capture.path}"
        if lost:
            said += f", {lost} records lost"
        log.info("capture: %s", said)
        return Done(message=said)

    def _captures_changed(self, captures: list[CaptureRequest]) -> None:
        """Tell each worker what the captures running want of it: frames cut at the longest
        snaplen asked, only drops if that is all anyone wants; nothing once none is left."""
        with self._capture_lock:
            for worker in self._workers.values():
                direction = worker.direction
                wanted = [c for c in captures if c.direction in (None, direction)]
                start = (
                    StartCapture(
                        snaplen=max(c.snaplen for c in wanted),
                        drops_only=all(c.drops_only for c in wanted),
                    )
                    if wanted
                    else None
                )
                if start == self._capturing[direction]:
                    continue
                self._capturing[direction] = start
                worker.send(encode(start if start is not None else StopCapture()))
                log.info("%s: %s", direction, "capturing fates" if start else "capture ended")

    def flush(self, request: Flush) -> Message:
        """Have the workers drop what the links hold (see protocol.Flush)."""
        labels = self._labels()
        if request.label is not None and request.label not in labels:
            return Error(message=f"link: no link labelled {request.label!r}")
        data = encode(request)
        for direction, worker in self._workers.items():
            if request.direction in (None, direction):
                worker.send(data)
        which = request.label or "every link"
        where = request.direction or "both directions"
        log.info("flush: %s, %s", which, where)
        return Done(message=f"flushed {which}, {where}")

    def stats(self) -> EngineStats:
        """Both directions' figures as of the question: each worker is asked to report at
        once, and the reply waits for those reports (at most FRESH_WAIT). A script that sent
        traffic and asks finds it counted, however slowly workers report while nobody
        watches (once a second: a report built cold costs the worker some 0.7 ms)."""
        asked = time.monotonic()
        self._pace_stats(report_now=True)
        self._fresh_reports(asked)
        with self._reported:
            latest = dict(self._latest)
        seen = {d: self._as_seen(stats, self._workers[d]) for d, stats in latest.items()}
        return EngineStats(ingress=seen.get("ingress"), egress=seen.get("egress"))

    def info(self) -> Info:
        pids = {
            d: w.process.pid
            for d, w in self._workers.items()
            if w.process is not None and w.process.pid is not None
        }
        return Info(
            outer=self.outer,
            inner=self.inner,
            supervisor_pid=os.getpid(),
            worker_pids=pids,
            spec_path=self.spec_path,
            control_path=self.control_path,
        )


__all__ = ["DIRECTIONS", "Supervisor"]
