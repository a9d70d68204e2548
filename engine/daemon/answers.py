"""Control requests the supervisor answers without the spec lock: a flush passed on to the
workers, and what the engine is (its interfaces, pids and paths). Kept apart from the
supervisor, whose own work is the spec and its changes."""

from __future__ import annotations

import base64
import logging
import os

from engine.daemon.config import EngineConfig
from engine.daemon.reports import TrafficProfiles
from engine.daemon.worker_pool import WorkerPool
from engine.model.version import __version__
from engine.protocol.messages import (
    Done,
    Error,
    Flush,
    GetInfo,
    GetProfile,
    GetVersion,
    Info,
    Message,
    ProfileReply,
    Version,
    encode,
)

log = logging.getLogger("linkshaper")


def flush(pool: WorkerPool, labels: set[str], request: Flush) -> Message:
    """Have the workers drop what the links hold (see protocol.Flush)."""
    if request.label is not None and request.label not in labels:
        return Error(message=f"link: no link labelled {request.label!r}")
    data = encode(request)
    for direction, worker in pool.workers.items():
        if request.direction in (None, direction):
            worker.send(data)
    which = request.label or "every link"
    where = request.direction or "both directions"
    log.info("flush: %s, %s", which, where)
    return Done(message=f"flushed {which}, {where}")


def engine_info(config: EngineConfig, pool: WorkerPool) -> Info:
    """The engine's interfaces, its processes and its files."""
    pids = {
        d: w.process.pid
        for d, w in pool.workers.items()
        if w.process is not None and w.process.pid is not None
    }
    return Info(
        outer=config.outer,
        inner=config.inner,
        supervisor_pid=os.getpid(),
        worker_pids=pids,
        spec_path=config.spec_path,
        control_path=config.control_path,
    )


def about(
    request: Message, config: EngineConfig, pool: WorkerPool, profiles: TrafficProfiles
) -> Message:
    """What the engine is (GetInfo), its version, a direction's traffic profile; an Error for
    anything that is no request."""
    if isinstance(request, GetInfo):
        return engine_info(config, pool)
    if isinstance(request, GetVersion):
        return Version(version=__version__)
    if isinstance(request, GetProfile):
        data = profiles.profile(request.direction)
        return ProfileReply(direction=request.direction, data=base64.b64encode(data).decode())
    return Error(message=f"not a request: {request.type}")
