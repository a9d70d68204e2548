"""CPU of a shaper's processes over a measured stretch, and (linkshaper only) where its egress
worker's time goes meanwhile, from py-spy."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.passthrough import cpu_seconds
from bench.shapers import Running

ROOT = Path(__file__).resolve().parent.parent
#: The stretch of each TCP run whose CPU is counted: after slow start, before the end.
WARMUP = 3.0
MEASURED = 5.0


@dataclass
class CpuMeter:
    """CPU of the shaper's processes between `start` and `stop`, as a share of one core; with
    `profile` (linkshaper only), py-spy samples the egress worker meanwhile, without stopping
    it (`--nonblocking`), and `profile_text` is its self time per function."""

    running: Running
    profile: bool = False
    _before: float = 0.0
    _started: float = 0.0
    _spy: subprocess.Popen[bytes] | None = None
    _spy_out: Path | None = None
    percent: float = field(default=0.0, init=False)
    profile_text: str = field(default="", init=False)

    def start(self) -> None:
        if self.profile and self.running.engine is not None:
            with self.running.engine.client() as control:
                pid = control.info().worker_pids["egress"]
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            self._spy_out = Path(tempfile.mkdtemp()) / "profile.txt"
            self._spy = subprocess.Popen(
                [spy, "record", "--nonblocking", "-d", str(int(MEASURED)), "-r", "200",
                 "-f", "raw", "-o", str(self._spy_out), "-p", str(pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        self._before = sum(cpu_seconds(p) for p in self.running.processes)
        self._started = time.monotonic()

    def stop(self) -> None:
        used = sum(cpu_seconds(p) for p in self.running.processes) - self._before
        self.percent = used / (time.monotonic() - self._started) * 100.0
        if self._spy is not None and self._spy_out is not None:
            self._spy.wait(MEASURED + 30)
            self.profile_text = summarize(self._spy_out.read_text())
            shutil.rmtree(self._spy_out.parent, ignore_errors=True)


def summarize(raw: str, top: int = 10) -> str:
    """Self time per function (file and line) from py-spy's collapsed stacks."""
    counts: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if stack:
            leaf = stack.split(";")[-1]
            counts[leaf] = counts.get(leaf, 0) + int(number)
    total = sum(counts.values()) or 1
    rows = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return "\n".join(f"{n / total:6.1%}  {name.replace(str(ROOT) + '/', '')}" for name, n in rows)
