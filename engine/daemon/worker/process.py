"""The worker's process: its entry point, which builds the forwarder from what the supervisor
hands over (its direction's `WorkerConfig`, the spec and trace files as JSON, its end of the
pipe) and forwards until told to stop.
"""

from __future__ import annotations

import contextlib
import gc
import json
import signal
from multiprocessing.connection import Connection

from engine.daemon.config import WorkerConfig
from engine.daemon.worker.forwarder import Forwarder
from engine.daemon.worker.loop import run_forwarder
from engine.kernel.libc import libc
from engine.kernel.realtime import make_realtime
from engine.model.spec import Spec
from engine.model.trace import TraceFile
from engine.protocol.messages import WorkerError, encode

PR_SET_TIMERSLACK = 29


def _tight_timers() -> None:
    """Ask the kernel to wake us on time: by default a sleeping process's timers may fire up
    to 50 µs late (timer slack), which would show in the packets' release times."""
    with contextlib.suppress(OSError, AttributeError):
        libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


def run_worker(
    config: WorkerConfig, spec_json: str, trace_files_json: str, conn: Connection
) -> None:
    """Process entry point (spawn context): forward until told to stop or the pipe closes."""
    # The supervisor owns the terminal's signals; a Ctrl-C must not kill workers mid-flight.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _tight_timers()
    refused = None
    if config.realtime:  # before any thread starts: they inherit it
        try:
            make_realtime()
        except OSError as exc:  # the supervisor found it allowed: said, not fatal
            refused = f"--realtime refused to this worker: {exc.strerror}; it runs as before"
    try:
        spec = Spec.model_validate_json(spec_json)
        trace_files = {
            path: TraceFile.model_validate(fields)
            for path, fields in json.loads(trace_files_json).items()
        }
        forwarder = Forwarder(config, spec, trace_files)
        if refused:
            forwarder.note("warning", refused)
    except OSError as exc:
        conn.send_bytes(encode(WorkerError(direction=config.direction, message=str(exc))))
        raise SystemExit(1) from None
    # Everything made so far (modules, pydantic's validators) lives as long as the process: keep
    # it out of the cyclic collector, whose full passes would otherwise stall packets for ms.
    gc.freeze()
    try:
        run_forwarder(forwarder, conn)
    finally:
        forwarder.close()
