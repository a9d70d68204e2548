"""Writing a timeline as changes happen: each applied spec, and optionally stats samples.

Used by `linkshaper run --record` (inside the supervisor, at the moment a change is applied),
by `linkshaper record` and by the TUI's record toggle (from the engine's change stream). Each
line is flushed at once, so a recording survives the recorder being killed.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from engine.model.spec import Spec
from engine.model.stats import DirectionStats
from engine.timelines.timeline import HEADER_KEY, VERSION

#: Stats samples are kept at most this often per direction (the engine makes ten a second).
STATS_INTERVAL = 0.5


class TimelineRecorder:
    def __init__(
        self,
        path: str | Path,
        stats: bool = False,
        stats_interval: float = STATS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.with_stats = stats
        self.stats_interval = stats_interval
        self.clock = clock
        self._lock = threading.Lock()
        self._last_stats: dict[str, float] = {}
        self._file: TextIO | None = self.path.open("w")
        self._origin = clock()
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        self._write({HEADER_KEY: VERSION, "started": started})

    def _write(self, line: dict[str, object]) -> None:
        with self._lock:
            if self._file is None:
                return
            self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
            self._file.flush()

    def _at(self) -> float:
        return round(self.clock() - self._origin, 4)

    def spec(self, spec: Spec, source: str) -> None:
        self._write({"at": self._at(), "spec": spec.model_dump(mode="json"), "source": source})

    def stats(self, stats: DirectionStats) -> None:
        if not self.with_stats:
            return
        now = self.clock()
        if now - self._last_stats.get(stats.direction, -1e9) < self.stats_interval:
            return
        self._last_stats[stats.direction] = now
        sample = stats.model_dump(mode="json", exclude={"top_talkers"})
        self._write({"at": self._at(), "stats": sample})

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
