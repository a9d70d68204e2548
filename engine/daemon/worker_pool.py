"""The worker processes: one per direction, started, heard, restarted and stopped.

Workers are started with the `spawn` context so they begin clean (no inherited threads or
sockets). A worker that says nothing for STALL_AFTER (its reports are its heartbeat) is killed
and restarted; a restart that fails is tried again with growing pauses: the pool gives up on a
worker only when the engine stops. What a worker says is the supervisor's business (`PoolHooks`),
except which change it has in force, which the pool keeps so that a change can wait for it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from pydantic import ValidationError

from engine.daemon.channel import FrameReader
from engine.daemon.config import EngineConfig, with_realtime_checked
from engine.daemon.restarts import backoff, exit_cause
from engine.daemon.worker.process import run_worker
from engine.kernel.python_path import seal_python_path
from engine.model.spec import DIRECTIONS, Direction
from engine.model.stats import WorkerState
from engine.protocol.messages import Configured, Message, Stop, decode, encode

log = logging.getLogger("linkshaper")

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
#: A change's reply waits at most this long for the workers to have it in force.
APPLY_WAIT = 2.0


@dataclass
class WorkerHandle:
    """The supervisor's side of one direction's worker: its process, its pipe, and what the
    pool knows of its health."""

    direction: Direction
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
    #: Starts in a row that failed or died before a word (see `backoff`), and when to try next.
    failures: int = 0
    restart_at: float = 0.0
    #: Until when what it was sent may keep it busy (see SILENCE_PER_BYTE).
    busy_until: float = 0.0
    #: The process that ended last, and how (for the word that it was restarted).
    lost_pid: int | None = None
    lost_cause: str = ""

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

    @property
    def alive(self) -> bool:
        """Whether its process runs and its pipe is open (it can answer)."""
        return self.conn is not None and self.process is not None and self.process.is_alive()


def why_late(worker: WorkerHandle, stalled: bool) -> str:
    """Why `worker` has not put a change in force; `stalled`: it was found so meanwhile."""
    if stalled or worker.state == "stalled":
        return "stalled; restarting"
    if worker.state == "running":
        return f"last heard {time.monotonic() - worker.heard:.1f} s ago"
    return worker.state


@dataclass(frozen=True)
class PoolHooks:
    """What the pool asks of the supervisor, which owns the spec and what workers say."""

    #: The spec in force and the trace files it was admitted with, as JSON, for a new worker.
    start_args: Callable[[], tuple[str, str]]
    #: A worker was just started: send it what it must know now (a change that raced with
    #: the start must not be lost; the stats pace; its capture).
    started: Callable[[WorkerHandle], None]
    #: A message a worker sent (all but Configured, which the pool keeps).
    said: Callable[[WorkerHandle, Message], None]
    #: A worker was found stalled or its process ended.
    state_changed: Callable[[WorkerHandle], None]
    #: A worker whose process ended was started again (`lost_pid`, `lost_cause` say which
    #: and how it ended).
    restarted: Callable[[WorkerHandle], None] = lambda _worker: None


class WorkerPool:
    """The two workers, and the loop's wait for what they say, their exits and signals."""

    def __init__(self, config: EngineConfig, hooks: PoolHooks) -> None:
        self._config = with_realtime_checked(config)
        self._hooks = hooks
        seal_python_path()  # spawn runs `python -c`: the cwd would come first on its sys.path
        self._context = multiprocessing.get_context("spawn")
        self.workers: dict[Direction, WorkerHandle] = {d: WorkerHandle(d) for d in DIRECTIONS}
        #: Each Configure sent is numbered; each worker says which it has put in force.
        self._in_force: dict[Direction, int] = {}
        self._configured = threading.Condition()
        self.stopping = threading.Event()
        # Signals and stop() write here, so the loop wakes at once without polling.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def send_all(self, data: bytes) -> None:
        for worker in self.workers.values():
            worker.send(data)

    def start(self) -> None:
        for worker in self.workers.values():
            self._spawn(worker)

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"!")

    def stop(self) -> None:
        self.stopping.set()
        self.wake()

    def _spawn(self, worker: WorkerHandle) -> None:
        """Start `worker`'s process with the spec in force; OSError (and nothing left open)
        if it cannot be started (`_restart` tries again)."""
        parent, child = self._context.Pipe()
        try:
            reader = FrameReader(parent)
        except OSError:
            parent.close()
            child.close()
            raise
        spec_json, trace_files_json = self._hooks.start_args()
        process = self._context.Process(
            target=run_worker,
            args=(self._config.worker(worker.direction), spec_json, trace_files_json, child),
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
        self._hooks.started(worker)

    def close(self) -> None:
        """Tell the workers to stop, wait for them a little, kill those that did not."""
        self.send_all(encode(Stop()))
        deadline = time.monotonic() + 2.0
        for worker in self.workers.values():
            if worker.process is not None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join(1.0)
            self._close_pipe(worker)

    def poll(self, timeout: float) -> None:
        """Wait for what the workers say, their exits, a signal, or the next moment a worker
        must be looked at (`_next_look`); then read, and tend each worker (`_tend`)."""
        handles: dict[Connection | int, WorkerHandle] = {}
        now = time.monotonic()
        for worker in self.workers.values():
            if worker.conn is not None and worker.reader is not None:
                handles[worker.conn] = worker
            if worker.process is not None and worker.state != "restarting":
                handles[worker.process.sentinel] = worker  # (a dead one's stays readable)
            timeout = min(timeout, self._next_look(worker) - now)
        ready = wait([*handles, self._wake_r], max(0.0, timeout))
        # Silence is judged as of this moment, before what came is read: if this process is
        # itself held up while it reads (stopped, starved), a worker heard meanwhile must not
        # count as silent for that long.
        now = time.monotonic()
        for handle in ready:
            if handle == self._wake_r:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.read(self._wake_r, 512)
                continue
            worker = handles[handle]  # type: ignore[index]
            if handle is worker.conn:
                self._read(worker)
        for worker in self.workers.values():
            if self.stopping.is_set():
                return
            self._tend(worker, now)

    def _next_look(self, worker: WorkerHandle) -> float:
        """When the loop must look at `worker` even if nothing happens: when its restart is
        due, or when it would count as stalled (never sooner: an idle engine stays asleep)."""
        if worker.state == "restarting":
            return worker.restart_at
        if worker.process is None or worker.state == "stalled":
            return float("inf")  # (a stalled one was killed: its exit wakes the loop)
        if not worker.spoke:
            return worker.heard + START_GRACE
        return max(worker.heard, worker.busy_until) + STALL_AFTER

    def _tend(self, worker: WorkerHandle, now: float) -> None:
        """Restart a worker that exited (at once if it had worked, else after `backoff`),
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

    def _stalled(self, worker: WorkerHandle, now: float) -> None:
        """Kill a worker silent for too long (SIGKILL: a stopped process cannot catch it); its
        exit restarts it. Changes waiting for it are told at once (`await_generation`)."""
        assert worker.process is not None
        worker.state = "stalled"
        worker.stalls += 1
        log.error(
            "%s worker (pid %s) silent for %.1f s: stalled; killing and restarting it",
            worker.direction, worker.process.pid, now - worker.heard,
        )  # fmt: skip
        with contextlib.suppress(OSError):
            worker.process.kill()
        self._hooks.state_changed(worker)
        with self._configured:
            self._configured.notify_all()

    def _lost(self, worker: WorkerHandle, now: float) -> None:
        """A worker's process ended: close its pipe, and restart it when `backoff` says."""
        assert worker.process is not None
        stalled = worker.state == "stalled"
        self._close_pipe(worker)
        pause = backoff(worker.failures)
        worker.failures += 1
        worker.state, worker.restart_at = "restarting", now + pause
        why = "was stalled and is killed" if stalled else exit_cause(worker.process.exitcode)
        worker.lost_pid, worker.lost_cause = worker.process.pid, why
        log.warning(
            "%s worker (pid %s) %s; restarting%s", worker.direction, worker.process.pid, why,
            f" in {pause:.1f} s" if pause else "",
        )  # fmt: skip
        self._hooks.state_changed(worker)
        with self._configured:
            self._configured.notify_all()

    def _restart(self, worker: WorkerHandle) -> None:
        """Start a worker again; a failure (no descriptors left, no memory for a process) is
        logged and tried again after `backoff`: the supervisor ends only when told to."""
        try:
            self._spawn(worker)
        except Exception as exc:  # whatever it is, the link must not go down for it
            pause = backoff(worker.failures)
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
        self._hooks.restarted(worker)

    @staticmethod
    def _close_pipe(worker: WorkerHandle) -> None:
        with worker.lock:
            if worker.reader is not None:
                worker.reader.close()
                worker.reader = None
            if worker.conn is not None:
                worker.conn.close()
                worker.conn = None

    def _read(self, worker: WorkerHandle) -> None:
        """What `worker` sent: it is heard (its heartbeat); each message goes to the hooks."""
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
            if isinstance(message, Configured):
                with self._configured:
                    self._in_force[message.direction] = message.generation
                    self._configured.notify_all()
            else:
                self._hooks.said(worker, message)

    def await_generation(self, generation: int, timeout: float = APPLY_WAIT) -> list[str]:
        """Until every worker has put `generation` (or a later one) in force, or `timeout`,
        or until one it waits for is found stalled (it cannot be before it is restarted):
        for each that has not, a line that says so and why (empty if all have). A worker that
        is restarting counts once it has (it gets the spec when it starts). Called from
        control threads: the loop that reads the workers' answers must be free."""
        started = time.monotonic()
        stalls = {worker.direction: worker.stalls for worker in self.workers.values()}
        # A large change may keep a worker busy for longer (see SILENCE_PER_BYTE).
        busy = max(worker.busy_until for worker in self.workers.values())
        timeout += max(0.0, busy - started)
        with self._configured:
            while True:
                behind = [
                    w for w in self.workers.values()
                    if w.process is not None and self._in_force.get(w.direction, -1) < generation
                ]  # fmt: skip
                given_up = any(w.stalls != stalls[w.direction] for w in behind)
                left = started + timeout - time.monotonic()
                if not behind or given_up or left <= 0 or self.stopping.is_set():
                    break
                self._configured.wait(left)
        waited = time.monotonic() - started
        late = [
            f"{w.direction} worker: change not in force after {waited:.1f} s "
            f"({why_late(w, w.stalls != stalls[w.direction])})"
            for w in behind
        ]
        for line in late:
            log.warning("%s", line)
        return late

    def wait_until(
        self,
        condition: threading.Condition,
        behind: Callable[[WorkerHandle], bool],
        deadline: float,
    ) -> list[Direction]:
        """Wait on `condition` (which guards what `behind` reads) until no running worker is
        `behind`, or until `deadline`; the directions still behind then."""
        with condition:
            while True:
                waiting = [w.direction for w in self.workers.values() if w.alive and behind(w)]
                left = deadline - time.monotonic()
                if not waiting or left <= 0:
                    return waiting
                condition.wait(left)
