"""Writing a timeline as changes happen: each applied spec, and optionally stats samples.

Used by `linkshaper run --record` (inside the supervisor, at the moment a change is applied),
by `linkshaper record`, by the TUI's record toggle (from the engine's change stream) and by
the HTTP API. Each line is flushed at once, so a recording survives the recorder being
killed. A recording stops at MAX_RECORDING_BYTES with a last comment line that says so
(readers skip comments, so it stays a valid timeline).

`run --record` and the TUI write as root, possibly in a directory others can write: a
recording is never written through a symbolic link (nor into a file with other hard links,
nor into anything but a regular file), and a name the program makes up (the TUI's
`linkshaper-DATE.jsonl`, which anyone can guess) is written only if the file is made now.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import logging
import os
import stat
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
#: The permission bits of a recording made afresh: its owner's only (it says what was shaped
#: and when, and may be written by root in a directory others can read).
RECORDING_FILE_MODE = 0o600
#: Names tried for a recording whose made-up name is taken (`-2`, `-3`, ...): the TUI names
#: them by the second, so a few are taken by a user pressing `r` often; past this many,
#: someone has planted them, and the recording is refused with the reason.
RECORDING_NAME_TRIES = 100


def open_recording(path: str | Path, new_file: bool = False) -> BinaryIO:
    """`path` opened for writing a recording: made if missing, else emptied; with `new_file`,
    only a file made now (FileExistsError if anything, a link too, is at the name). OSError,
    its reason in one line, for a symbolic link (not followed), anything but a regular file,
    or a file with other hard links: root must not write where a link planted by someone else
    points."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
    name = str(path)
    try:  # not O_TRUNC: what is there is looked at first (a FIFO would block without NONBLOCK)
        fd = os.open(name, flags | os.O_EXCL if new_file else flags, RECORDING_FILE_MODE)
    except OSError as exc:
        # Refused at once; said in words (some kernels answer EACCES for someone else's link
        # in a sticky directory, not EEXIST or ELOOP).
        if new_file and os.path.lexists(name):
            raise FileExistsError(errno.EEXIST, "taken", name) from None
        if exc.errno == errno.ELOOP or os.path.islink(name):
            raise OSError(errno.ELOOP, "a symbolic link, not followed", name) from None
        if exc.errno == errno.ENXIO:  # a FIFO nobody reads (or a socket)
            raise OSError(exc.errno, "not a regular file, not written", name) from None
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file, not written", name)
        if status.st_nlink > 1:
            raise OSError(errno.EMLINK, "a file with other hard links, not written", name)
        os.ftruncate(fd, 0)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def open_new_recording(directory: str | Path, stem: str) -> tuple[Path, BinaryIO]:
    """A recording made now in `directory` as `STEM.jsonl`, or `STEM-2.jsonl`, `-3`, ... if
    taken (by anything: a link planted at a guessable name is passed over, never followed);
    the name and the file. OSError if none of RECORDING_NAME_TRIES names is free."""
    folder = Path(directory)
    for number in range(1, RECORDING_NAME_TRIES + 1):
        path = folder / (f"{stem}.jsonl" if number == 1 else f"{stem}-{number}.jsonl")
        try:
            return path, open_recording(path, new_file=True)
        except FileExistsError:
            continue
    raise OSError(
        errno.EEXIST, f"taken, as are the {RECORDING_NAME_TRIES - 1} names before it", str(path)
    )


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
        """Write to `path` (see `open_recording`), or to `file` already opened on it (then
        `path` only names it)."""
        self.path = Path(path)
        self.with_stats = stats
        self.stats_interval = stats_interval
        self.clock = clock
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._last_stats: dict[str, float] = {}
        self._file: BinaryIO | None = file if file is not None else open_recording(self.path)
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

    def take(self, message: object) -> None:
        """Keep what an engine's message says, if a timeline keeps it: a spec put in force
        (a `spec` and its `source`, as SpecChanged) or a stats sample (a direction's `stats`,
        as StatsReport); anything else is passed over. This is how every recorder is fed, from
        the supervisor's own messages, a subscription or the TUI's. By shape, not by class:
        the protocol is a layer beside this one, and the TUI's messages carry the same."""
        spec = getattr(message, "spec", None)
        if isinstance(spec, Spec):
            source = getattr(message, "source", None)
            if isinstance(source, str):
                self.spec(spec, source)
            return
        stats = getattr(message, "stats", None)
        if isinstance(stats, DirectionStats):
            self.stats(stats)

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
