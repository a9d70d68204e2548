"""The supervisor: owns the spec in force, and every change to it; serves control.

Every change (a control client, the HTTP API, a replay, SIGHUP) goes through `change` or
`apply`: the gate admits it, `_commit` sends it to both workers (see WorkerPool), tells
subscribers and the recorder, and has it saved (see SpecFile). What the workers report goes
to StatsReports and TrafficProfiles; what they capture is Captures'. The supervisor ends only
when told to.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import FrameType

from engine.core.plan import Interner
from engine.daemon import answers, gate
from engine.daemon.apply_timing import time_in_force
from engine.daemon.captures import Captures
from engine.daemon.collector import collector_paused
from engine.daemon.config import EngineConfig
from engine.daemon.plans import Sent, pack_plans
from engine.daemon.reports import StatsReports, TrafficProfiles
from engine.daemon.restarts import restarted_message
from engine.daemon.spec_file import SpecFile
from engine.daemon.worker_pool import PoolHooks, WorkerHandle, WorkerPool
from engine.files.spec_files import read_spec
from engine.kernel.interface_state import bring_up
from engine.model.spec import DIRECTIONS, Direction, Spec, SpecError
from engine.model.stats import EngineStats
from engine.model.trace import TraceError
from engine.protocol.control_server import ControlServer
from engine.protocol.messages import (
    CaptureRequest,
    CaptureToFile,
    Done,
    Door,
    Error,
    FarEnds,
    FateRecords,
    Flush,
    GetSpec,
    GetStats,
    Info,
    Message,
    PatchSpec,
    SetSpec,
    SpecChanged,
    SpecReply,
    StatsReply,
    StatsReport,
    StopCaptureToFile,
    Subscribe,
    WorkerError,
    WorkerNote,
    encode,
)
from engine.protocol.subscribers import CaptureFeed
from engine.timelines.recorder import TimelineRecorder

log = logging.getLogger("linkshaper")

#: A change made on a spec that another change replaced meanwhile is made again this often
#: without the lock, then once more with it (requests are bounded in size, so that is too).
CHANGE_ATTEMPTS = 20
#: The loop wakes for workers' messages, their exits and signals (a self-pipe); this is only a
#: backstop, so an idle engine costs nothing.
LOOP_TICK = 5.0


class Supervisor:
    """One engine: the spec in force and its changes, the workers that shape by it (a
    WorkerPool), and the control server every client talks to."""

    def __init__(
        self, config: EngineConfig, spec: Spec, recorder: TimelineRecorder | None = None
    ) -> None:
        """`config` says what to shape and where to keep the spec (`persist`: every change
        applied is written to `spec_path`, see SpecFile); `recorder` gets every change put in
        force and, if it keeps them, stats samples."""
        self.config = config
        self.recorder = recorder
        self._spec = spec
        #: The spec in force with the trace files it was admitted with (one object, so a change
        #: reads both at once; `_commit` replaces it).
        self._admitted = gate.admitted_at_start(spec)
        self._spec_lock = threading.RLock()  # held only to put a checked spec in force
        #: Each Configure sent is numbered; each worker says which it has put in force.
        self._generation = 0
        #: Equal link specs made one object across the plans sent (engine.core.plan).
        self._interner = Interner()
        #: Each worker's plan as last sent (a change sends what differs: engine.daemon.plans).
        self._sent: Sent = {}
        calls = (self._start_args, self._greet, self._heard, self._state_changed, self._restarted)
        self._pool = WorkerPool(config, PoolHooks(*calls))
        # The hub every client talks to; it listens on a socket only if there is a path.
        self._control = ControlServer(
            config.control_path, self.handle, self._captures_changed, on_watchers=self._pace
        )
        self._captures = Captures(self._pool, self._control, self._labels)
        self._reports = StatsReports(self._pool, self._control, recorder, self._labels)
        self._profiles = TrafficProfiles(config.profiles)
        self._reload_requested = False
        self._sighup_at = 0.0
        #: Called first at shutdown (the HTTP server's stop).
        self.on_shutdown: list[Callable[[], None]] = []
        self._spec_file = SpecFile(config.spec_path, config.persist)

    @property
    def spec(self) -> Spec:
        return self._spec

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self.recorder is not None:
            self.recorder.spec(self._spec, "start")
        self._profiles.start()
        if self.config.ports.packet:
            for ifname in (self.config.outer, self.config.inner):
                bring_up(ifname)
        self._pool.start()
        self._control.start()
        # What exists now (modules, pydantic's validators: some 50 000 objects) lives as long
        # as the process. Out of the cyclic collector's way, its full passes take well under a
        # millisecond instead of 15-20 ms, which would hold up a change applied meanwhile.
        gc.freeze()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGHUP, self._on_sighup)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)

    def _on_sighup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload_requested = True
        self._sighup_at = time.monotonic()
        self._pool.wake()

    def _on_stop_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self._pool.stop()

    def stop(self) -> None:
        self._pool.stop()

    def listen(self, callback: Callable[[Message], None]) -> Callable[[], None]:
        """Every published message, in this process (see ControlServer.listen)."""
        return self._control.listen(callback)

    def serve(self, conn: Connection, stop_on_close: bool = False) -> None:
        """Answer control requests on a connection (a Pipe end) as on the socket."""
        self._control.serve(conn, self.stop if stop_on_close else None)

    def run(self) -> None:
        """Serve until stopped: read stats, restart dead workers, reload on SIGHUP."""
        try:
            while not self._pool.stopping.is_set():
                if self._reload_requested:
                    self._reload_requested = False
                    self.reload()
                self._pool.poll(LOOP_TICK)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for stop in self.on_shutdown:
            stop()
        self._spec_file.close()  # the latest change on disk: a restart starts with it
        self._captures.close()
        if self.recorder is not None:
            self.recorder.close()
        self._control.close()
        self._pool.close()

    # --- what the worker pool asks -------------------------------------------------------

    def _start_args(self) -> tuple[str, str]:
        """The spec in force and its trace files, as JSON, for a worker being started."""
        trace_files = self._admitted.trace_files
        return (
            self._spec.model_dump_json(),
            json.dumps({k: v.model_dump() for k, v in trace_files.items()}),
        )

    def _greet(self, worker: WorkerHandle) -> None:
        """What a worker just started must know: a change that raced with its start must not
        be lost, so the spec in force now; the stats pace; what it captures."""
        with self._spec_lock:  # (a change sent meanwhile would be a diff of another plan)
            self._sent.pop(worker.direction, None)
            worker.send(self._configure((worker.direction,))[worker.direction])
        if self._reports.watched:
            worker.send(self._reports.pace_message())
        capture = self._captures.wanted(worker.direction)
        if capture is not None:
            worker.send(encode(capture))

    def _heard(self, worker: WorkerHandle, message: Message) -> None:
        """A message from a worker (all but Configured, which the pool keeps)."""
        if isinstance(message, StatsReport):
            self._reports.take(message, worker)
        elif isinstance(message, FarEnds):
            self._profiles.take(message.direction, message.far_ends)
        elif isinstance(message, FateRecords):
            self._control.publish(message)
        elif isinstance(message, WorkerError):
            log.error("%s worker: %s", message.direction, message.message)
        elif isinstance(message, WorkerNote):
            level = logging.INFO if message.level == "info" else logging.WARNING
            log.log(level, "%s: %s", message.direction, message.message)

    def _state_changed(self, worker: WorkerHandle) -> None:
        self._reports.publish_state(worker)

    def _restarted(self, worker: WorkerHandle) -> None:
        self._control.publish(restarted_message(
            worker.direction, worker.process, worker.lost_pid, worker.lost_cause))  # fmt: skip

    # The control server is made before what it calls back (which need it): these reach them.

    def _pace(self) -> None:
        self._reports.pace()

    def _captures_changed(self, captures: list[CaptureRequest]) -> None:
        self._captures.changed(captures)

    # --- the spec ------------------------------------------------------------------------

    def apply(self, admitted: gate.Admitted, source: str, door: Door = "control") -> Spec:
        """Put a spec the gate admitted in force: both workers, then everyone who listens,
        then the spec file."""
        with self._spec_lock:
            spec = self._commit(admitted, source, door)
            self._spec_file.applied(spec, source)
            return spec

    def _configure(self, directions: tuple[Direction, ...] = DIRECTIONS) -> dict[Direction, bytes]:
        """What tells each worker the spec in force (and the trace files it was admitted
        with), in the compact form a worker reads fast (engine.daemon.plans; lock held)."""
        admitted = self._admitted
        return pack_plans(
            admitted.spec, self._generation, admitted.trace_files, self._interner, self._sent,
            directions,
        )  # fmt: skip

    def _commit(self, admitted: gate.Admitted, source: str, door: Door = "control") -> Spec:
        """`apply` with the lock held."""
        spec = admitted.spec
        self._admitted = admitted
        self._spec = spec
        self._generation += 1
        packed = self._configure()
        for direction, worker in self._pool.workers.items():
            worker.send(packed[direction])
        changed = SpecChanged(spec=spec, source=source, at=time.time(), origin=door)
        if self.recorder is not None:
            self.recorder.take(changed)
        self._control.publish(changed)
        return spec

    @property
    def spec_file_writes(self) -> int:
        """How often the spec file was written since the start (see SpecFile)."""
        return self._spec_file.writes

    def reload(self) -> bool:
        """Re-read the spec file (SIGHUP). A bad file is reported and the spec stays."""
        path = self.config.spec_path
        if not path:
            log.warning("SIGHUP: no spec file to reload")
            return False
        with collector_paused(freeze=True):
            try:
                admitted = gate.reloaded(read_spec(path), self._admitted)
            except (SpecError, TraceError) as exc:
                log.error("SIGHUP: %s: %s; keeping the spec in force", path, exc)
                return False
            self.apply(admitted, "sighup", "sighup")
        asked_at, self._sighup_at = self._sighup_at or time.monotonic(), 0.0
        time_in_force(self._pool, self._generation, asked_at, "sighup", len(admitted.spec.flows))
        return True

    def change(
        self,
        make: Callable[[gate.Admitted], gate.Admitted],
        source: str,
        door: Door = "control",
        abandoned: Callable[[], bool] | None = None,
    ) -> Message:
        """Apply `make(spec in force)`, answered once both workers have it in force (see
        `WorkerPool.await_generation`), so that whoever changed the link can send at once.
        If `abandoned()` says, just before it would be committed, that its caller no longer
        waits (gone, or told it failed), the change is dropped instead."""
        asked_at = time.monotonic()
        with collector_paused():
            reply = self._change(make, source, door, abandoned or _never)
        if isinstance(reply, SpecReply):
            flows = len(reply.spec.flows)
            time_in_force(self._pool, self._generation, asked_at, source, flows)
            late = self._pool.await_generation(self._generation)
            with self._spec_lock:  # saved once in force (10,000 flows: 0.25 s); a newer one
                if self._spec is reply.spec:  # saves its own
                    self._spec_file.applied(reply.spec, source)
            if late:  # the spec in force is the new one: a worker back takes it at once
                kept = "; ".join(late) + "; the change is kept and is in force once it is back"
                return Error(message=kept, not_in_force=True)
        return reply

    def _change(
        self,
        make: Callable[[gate.Admitted], gate.Admitted],
        source: str,
        door: Door,
        abandoned: Callable[[], bool],
    ) -> Message:
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
                    return self._commit_unless(abandoned, admitted, source, door)
        with self._spec_lock:  # under heavy contention: one more time, holding the lock
            try:
                admitted = make(self._admitted)
            except (SpecError, TraceError) as exc:
                return Error(message=str(exc))
            return self._commit_unless(abandoned, admitted, source, door)

    def _commit_unless(
        self, abandoned: Callable[[], bool], admitted: gate.Admitted, source: str, door: Door
    ) -> Message:
        """`_commit`, unless the change's caller gave up while it waited (lock held)."""
        if abandoned():
            log.warning("change from %s dropped: its client gave up before it was in force", source)
            return Error(message="change dropped: its client gave up before it was in force")
        return SpecReply(spec=self._commit(admitted, source, door))

    def handle(self, request: Message) -> Message:
        """Answer one control request (called from control threads)."""
        if isinstance(request, Subscribe) and request.capture is not None:
            refused = self._captures.refuse(request.capture)
            return refused or Done(message="capturing")
        if isinstance(request, GetSpec | Subscribe):
            return SpecReply(spec=self._spec)
        if isinstance(request, SetSpec | PatchSpec):  # every door's change: one gate
            change = request
            # The HTTP API stamps its changes `network` whatever process serves it; over the
            # control socket (`linkshaper http`) that is its declaration, which any key holder
            # (root, trusted as the owner) could make too: docs/control-protocol.md. A
            # client's `source` never sets the door.
            door: Door = "http" if request.origin == "network" else "control"
            return self.change(
                lambda base: gate.admit(change, base), request.source, door, change.abandoned
            )
        if isinstance(request, Flush):
            return self.flush(request)
        if isinstance(request, CaptureToFile):
            return self._captures.to_file(request)
        if isinstance(request, StopCaptureToFile):
            return self._captures.stop_to_file()
        if isinstance(request, GetStats):
            return StatsReply(stats=self.stats())
        return answers.about(request, self.config, self._pool, self._profiles)

    def _labels(self) -> set[str]:
        return {"default", *(flow.label for flow in self._spec.flows)}

    def capture(self, request: CaptureRequest) -> CaptureFeed:
        """A capture read in this process (the HTTP API's); ControlError for a bad request."""
        return self._captures.open(request)

    def flush(self, request: Flush) -> Message:
        return answers.flush(self._pool, self._labels(), request)

    def stats(self) -> EngineStats:
        """Both directions' figures as of the question (see StatsReports.stats)."""
        return self._reports.stats()

    def info(self) -> Info:
        return answers.engine_info(self.config, self._pool)


def _never() -> bool:
    return False


__all__ = ["Supervisor"]
