"""The forwarder: one direction's frames from one interface to the other through its pipeline,
made of its rooms (`Waits` over `Intake` over `Sender`; `Interfaces` over `SupervisorSide`),
each in a module of its own. All shaping decisions are made by the pure `DirectionPipeline`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from engine.core.pipeline import DirectionPipeline
from engine.daemon.config import WorkerConfig
from engine.daemon.worker.fast_path import FastPathRoom
from engine.daemon.worker.waits import Waits
from engine.files.trace_files import traces_in_force
from engine.model.spec import Spec
from engine.model.trace import TraceFile


class Forwarder(Waits, FastPathRoom):
    """One direction's frames from `config.rx_ifname` to `config.tx_ifname` through its
    pipeline. Its sockets come from `config.ports`: the interfaces' packet sockets, opened by
    name, or sockets handed in (tests over socket pairs; they are never reopened, and count
    no kernel drops)."""

    def __init__(
        self,
        config: WorkerConfig,
        spec: Spec,
        trace_files: Mapping[str, TraceFile] | None = None,
    ):
        """`trace_files`: the files the spec's traces were admitted from (`Configure`)."""
        self.direction = config.direction
        self.rx_ifname = config.rx_ifname
        self.tx_ifname = config.tx_ifname
        self.ports = config.ports
        self.precise = config.precise
        self.pipeline = DirectionPipeline(
            spec,
            config.direction,
            time.monotonic(),
            traces=traces_in_force(spec, trace_files or {}),
            unshaped_port=config.unshaped_port,
        )
        self.kernel_forwards = False
        self.sampled_frames = self.sampled_bytes = 0
        self._init_supervisor_side()
        self._init_sender()
        self._init_intake()
        self._init_waits()
        self._init_interfaces()
        self._init_fast_path(config.fast_path)
