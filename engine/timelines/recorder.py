"""Writing a timeline as changes happen: each applied spec, and optionally stats samples.

Used by `linkshaper run --record` (inside the supervisor, at the moment a change is applied),
by `linkshaper record`, by the TUI's record toggle (from the engine's change stream) and by
the HTTP API. Each line is flushed at once, so a recording survives the recorder being
killed. A recording stops at MAX_RECORDING_BYTES with a last comment line that says so
(readers skip comments, so it stays a valid timeline).
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from engine.model.spec import Spec
from engine.model.stats import DirectionStats
from engine.timelines.timeline import HEADER_KEY, VERSION

log = logging.getLogger(__name__)

#: Stats samples are kept at most this often per direction (the engine makes ten a second).
STATS_INTERVAL = 0.5
#: Largest recording: then it stops, with a last line saying why. With 2,000 flows stats
#: samples came to 2.4 MB a second and nothing stopped them; a few flows' changes and stats
#: take ~15 MB an hour, so this is hours of an ordinary session, and well within what
#: `replay` and `plot` read (MAX_TIMELINE_BYTES).
MAX_RECORDING_BYTES = 64 * 1024 * 1024
#: The marker a full recording ends with (a comment: timelines skip it).
FULL_MARKER = "# linkshaper: recording stopped"


class TimelineRecorder:
    def __init__(
        self,
        path: str | Path,
        stats: bool = False,
        stats_interval: float = STATS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        *,
        file: BinaryIO | None = None,
        max_bytes: int = MAX_RECORDING_BYTES,
    ) -> None:
        """Write to `path`, or to `file` already opened on it (then `path` only names it)."""
        self.path = Path(path)
        self.with_stats = stats
        self.stats_interval = stats_interval
        self.clock = clock
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._last_stats: dict[str, float] = {}
        self._file: BinaryIO | None = file if file is not None else self.path.open("wb")
        #: Bytes written in whole lines: a reader may take this many while more are written.
        self.written = 0
        #: Why the recording stopped early (the size cap), or None.
        self.full: str | None = None
        self._origin = clock()
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        self._write_line({HEADER_KEY: VERSION, "started": started})

    def _write_line(self, line: dict[str, object]) -> None:
        """One line, its `at` taken under the lock so that lines from several threads stay
        in time order."""
        with self._lock:
            if self._file is None or self.full is not None:
                return
            if "at" in line:
                line["at"] = round(self.clock() - self._origin, 4)
            data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
            if self.written + len(data) + len(FULL_MARKER) + 80 > self.max_bytes:
                self.full = f"reached {self.max_bytes} bytes, the most a recording takes"
                data = f"{FULL_MARKER}: {self.full}\n".encode()
                log.warning("recording to %s stopped: %s", self.path, self.full)
            self._file.write(data)
            self._file.flush()
            self.written += len(data)

    def spec(self, spec: Spec, source: str) -> None:
        self._write_line({"at": 0, "spec": spec.model_dump(mode="json"), "source": source})

    def stats(self, stats: DirectionStats) -> None:
        if not self.with_stats or self.full is not None:
            return
        now = self.clock()
        if now - self._last_stats.get(stats.direction, -1e9) < self.stats_interval:
            return
        self._last_stats[stats.direction] = now
        sample = stats.model_dump(mode="json", exclude={"top_talkers"})
        self._write_line({"at": 0, "stats": sample})

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
