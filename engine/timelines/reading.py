"""Timelines from files and bytes: read whole (`read_timeline`), or walked line by line as
often as a replay loops (`open_timeline`, `timeline_from_bytes`), memory bounded whatever the
length."""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.files.regular_files import read_regular_file
from engine.model.spec import MAX_SPEC_BYTES
from engine.timelines.parsing import parse_timeline, validated_items
from engine.timelines.timeline import (
    Header,
    PatchStep,
    SpecStep,
    StatsLine,
    Step,
    Timeline,
    TimelineError,
    line_end,
)

#: Largest timeline file read (an hour of stats at ten a second is well under it).
MAX_TIMELINE_BYTES = 256 * 1024 * 1024
#: A timeline file is read in pieces this large.
READ_CHUNK_BYTES = 256 * 1024
#: Longest line read: a whole spec, at its own largest, with room for the step around it.
MAX_LINE_BYTES = MAX_SPEC_BYTES + 64 * 1024


def read_timeline(path: str | Path) -> Timeline:
    """A timeline file read whole into memory; long files are better `open_timeline`d."""
    try:
        data = read_regular_file(str(path), MAX_TIMELINE_BYTES)
        text = data.decode()
    except OSError as exc:
        raise TimelineError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise TimelineError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_timeline(text.splitlines(), name=str(path))


#: A stats line as recorded, as bytes: the reader of steps passes over these undecoded.
_RECORDED_STATS_LINE = re.compile(rb'\s*\{"at":\s*[-+0-9.eE]+,\s*"stats":')


class TimelineTooLong(TimelineError):
    """A timeline with more steps than its reader takes (HTTP: 413)."""


@dataclass(frozen=True)
class TimelineSummary:
    """What a checking pass learnt, kept instead of the steps themselves."""

    steps: int
    stats: int
    duration: float
    header: Header | None


class StreamedTimeline:
    """A timeline read line by line, from a file or from bytes held compactly, as many times
    as a replay loops: memory stays bounded whatever its length. `check()` validates it whole
    in one streaming pass, as `parse_timeline` would; a line that changed since is reported
    when it is read again."""

    def __init__(
        self, lines: Callable[[], Iterator[bytes]], name: str, on_close: Callable[[], None]
    ) -> None:
        self._lines: Callable[[], Iterator[bytes]] | None = lines
        self.name = name
        self._on_close = on_close
        self._summary: TimelineSummary | None = None

    def _read(self) -> Iterator[bytes]:
        if self._lines is None:
            raise TimelineError(f"{self.name}: closed")
        return self._lines()

    def check(self, max_steps: int | None = None) -> TimelineSummary:
        """Every line validated (patches on a neutral base); TimelineTooLong beyond
        `max_steps` steps."""
        header: Header | None = None
        steps = stats = 0
        duration = 0.0
        for number, item in validated_items(self._read(), self.name):
            if isinstance(item, Header):
                header = item
                continue
            duration = max(duration, line_end(item))
            if isinstance(item, StatsLine):
                stats += 1
            else:
                steps += 1
                if max_steps is not None and steps > max_steps:
                    raise TimelineTooLong(f"{self.name} line {number}: more than {max_steps} steps")
        self._summary = TimelineSummary(steps, stats, duration, header)
        return self._summary

    @property
    def summary(self) -> TimelineSummary:
        return self._summary if self._summary is not None else self.check()

    @property
    def duration(self) -> float:
        return self.summary.duration

    @property
    def step_count(self) -> int:
        return self.summary.steps

    def iter_steps(self) -> Iterator[Step]:
        """The steps, read again from the start (stats lines skipped undecoded where they
        have the recorded form)."""
        for _, item in validated_items(
            self._steps_lines(), self.name, check_patches=False, stats=False
        ):
            if isinstance(item, SpecStep | PatchStep):
                yield item

    def _steps_lines(self) -> Iterator[bytes]:
        for line in self._read():
            yield b"" if _RECORDED_STATS_LINE.match(line) else line

    def iter_stats(self) -> Iterator[StatsLine]:
        """The stats lines, read again from the start; other lines are left to `iter_steps`
        (a line that cannot hold the key "stats" is not decoded here)."""
        candidates = (line if b'"stats"' in line else b"" for line in self._read())
        for _, item in validated_items(candidates, self.name, check_patches=False):
            if isinstance(item, StatsLine):
                yield item

    def close(self) -> None:
        """Let go of the bytes or the file (a finished replay keeps only its summary)."""
        if self._lines is not None:
            self._lines = None
            self._on_close()

    def __enter__(self) -> StreamedTimeline:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def timeline_from_bytes(data: bytes, name: str = "timeline") -> StreamedTimeline:
    """A timeline over `data` as it is (one bytes object, no copy per line)."""
    held: list[bytes] = [data]

    def lines() -> Iterator[bytes]:
        return iter(io.BytesIO(held[0])) if held else iter(())

    return StreamedTimeline(lines, name, held.clear)


def open_timeline(path: str | Path) -> StreamedTimeline:
    """A timeline file opened once (a regular file of at most MAX_TIMELINE_BYTES) and read
    line by line each time it is walked; call `check()` before relying on it."""
    name = str(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise TimelineError(f"{name}: {exc.strerror or exc}") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise TimelineError(f"{name}: not a regular file")
        if status.st_size > MAX_TIMELINE_BYTES:
            raise TimelineError(f"{name}: larger than {MAX_TIMELINE_BYTES} bytes")
    except BaseException:
        os.close(fd)
        raise

    def lines() -> Iterator[bytes]:
        """The lines from the start, at an offset of this walk's own (`pread`): a chart
        walks the steps and the stats side by side."""
        offset = 0
        number = 0
        partial = b""
        while chunk := os.pread(fd, READ_CHUNK_BYTES, offset):
            offset += len(chunk)
            if offset > MAX_TIMELINE_BYTES:  # it grew since it was opened
                raise TimelineError(f"{name}: larger than {MAX_TIMELINE_BYTES} bytes")
            pieces = (partial + chunk).split(b"\n")
            partial = pieces.pop()
            if len(partial) > MAX_LINE_BYTES:
                raise TimelineError(f"{name} line {number + len(pieces) + 1}: longer than "
                                    f"{MAX_LINE_BYTES} bytes")  # fmt: skip
            for line in pieces:
                number += 1
                yield line
        if partial:
            yield partial

    return StreamedTimeline(lines, name, lambda: os.close(fd))
