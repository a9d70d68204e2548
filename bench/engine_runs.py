"""Running the engine in the bench's lab for `bench.speed`: one engine around a piece of work,
and iperf3's UDP reports read as packets a second."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from engine.lab.harness import EngineProcess, iperf3
from engine.lab.lab import Lab
from engine.model.spec import Spec

SECONDS = 5
#: The engine's option that buys timing with CPU (polling), measured beside the default.
PRECISE = ("--precise",)


def udp_report(lab: Lab, bitrate: str, size: int, seconds: int = SECONDS) -> dict[str, Any]:
    return iperf3(lab, seconds=seconds, port=5311, omit=0,
                  extra=("-u", "-b", bitrate, "-l", str(size)))  # fmt: skip


def received_pps(report: dict[str, Any]) -> float:
    total = report["end"]["sum"]
    received = total["packets"] - total["lost_packets"]
    return float(received) / float(total["seconds"])


def with_engine(lab: Lab, spec: Spec, work: Any, extra: tuple[str, ...] = ()) -> Any:
    with tempfile.TemporaryDirectory() as workdir:
        engine = EngineProcess(lab, Path(workdir), spec, extra=extra)
        try:
            engine.wait_ready()
            return work(engine)
        finally:
            engine.close()
