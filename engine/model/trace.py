"""Packet-delivery traces in the Mahimahi format: variable capacity from recorded networks.

A trace file has one integer per line: a millisecond at which one delivery opportunity of
1504 bytes occurs (repeated lines are several opportunities in that millisecond). The trace
repeats with a period equal to its last timestamp. Bytes are counted as Mahimahi counts them:
the IP packet (the Ethernet frame less its 14-byte header). An opportunity's bytes may be
shared by several small packets or finish part of a large one; bytes not used when it comes
are lost, as in Mahimahi.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from engine.model.errors import LinkshaperError
from engine.model.files import read_regular_file

if TYPE_CHECKING:
    from engine.model.spec import Spec

OPPORTUNITY_BYTES = 1504
ETHERNET_HEADER = 14
#: Longest path a spec may name, and largest trace file read (a minute at 1 Gbit/s is ~30 MB).
MAX_TRACE_PATH = 4096
MAX_TRACE_BYTES = 32 * 1024 * 1024


class TraceError(LinkshaperError, ValueError):
    """A trace file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Trace:
    times_ms: tuple[int, ...]  # nondecreasing, the last one > 0

    @property
    def period_ms(self) -> int:
        return self.times_ms[-1]

    @property
    def average_bps(self) -> float:
        """The capacity the trace gives on average, in bits of IP packets per second."""
        return len(self.times_ms) * OPPORTUNITY_BYTES * 8 * 1000.0 / self.period_ms


def parse_trace(text: str, name: str = "trace") -> Trace:
    """A trace from its text. Errors name the line but never quote it: the file may be one
    that its reader must not see (a spec can name any path)."""
    times: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if not (stripped.isascii() and stripped.isdigit()):
            raise TraceError(f"{name} line {number}: not a whole number of milliseconds")
        value = int(stripped)
        if value < 0 or (times and value < times[-1]):
            raise TraceError(f"{name} line {number}: {value} goes back in time")
        times.append(value)
    if not times or times[-1] <= 0:
        raise TraceError(f"{name}: no opportunities after 0 ms (an empty trace)")
    return Trace(tuple(times))


@lru_cache(maxsize=32)
def _load(path: str, _mtime: float, _size: int) -> Trace:
    data = read_regular_file(path, MAX_TRACE_BYTES)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not a trace (byte {exc.start} is not ASCII)") from None
    return parse_trace(text, path)


def load_trace(path: str) -> Trace:
    """The trace at `path`, read once per version of the file: a regular file of at most
    MAX_TRACE_BYTES, read without blocking on FIFOs or devices."""
    try:
        status = os.stat(path)
        return _load(path, status.st_mtime, status.st_size)
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror or exc}") from None


def trace_fields(spec: Spec) -> Iterator[tuple[str, str]]:
    """(where in the spec, path) for every trace the spec names."""
    pairs = [("default_link", spec.default_link)]
    pairs += [(f"flows[{i}].link", flow.link) for i, flow in enumerate(spec.flows)]
    for where, pair in pairs:
        for direction in ("ingress", "egress"):
            path = pair.of(direction).trace
            if path is not None:
                yield f"{where}.{direction}.trace", path


def traces_in_force(spec: Spec) -> dict[str, Trace]:
    """Every trace the spec names that can be read, parsed, by path, for the pipeline: one that
    went away after the spec was checked is left out (its link keeps its rate)."""
    found: dict[str, Trace] = {}
    for _where, path in trace_fields(spec):
        with contextlib.suppress(TraceError):
            found[path] = load_trace(path)
    return found


def check_traces(spec: Spec) -> None:
    """Read every trace the spec names (off any event loop: this may wait on a disk), or a
    TraceError that names the field. Called where a spec is applied, not where it is parsed."""
    for where, path in trace_fields(spec):
        try:
            load_trace(path)
        except TraceError as exc:
            raise TraceError(f"{where}: {exc}") from None


def allowed_traces(spec: Spec, in_force: Spec, trace_dir: str | None) -> Spec:
    """For specs from a less trusted source (the HTTP API): every trace must be a file in
    `trace_dir` (named relative to it, or by its full path), or one already in force (a client
    that reads the spec, changes a rate and writes it back names the operator's trace again).
    Returns the spec with each such trace's full path; TraceError names the field."""
    known = {path for _, path in trace_fields(in_force)}
    resolved: dict[str, str] = {}
    for where, path in trace_fields(spec):
        if path in known:
            continue
        if trace_dir is None:
            raise TraceError(
                f"{where}: traces cannot be named over HTTP unless the engine's API runs with "
                "--trace-dir DIR"
            )
        root = os.path.realpath(trace_dir)
        full = os.path.realpath(os.path.join(root, path))
        if os.path.commonpath([root, full]) != root or full == root:
            raise TraceError(f"{where}: only files in the trace directory may be named")
        resolved[where] = full
    if not resolved:
        return spec
    data = spec.model_dump(mode="json")
    for where, full in resolved.items():
        node: Any = data
        for part in where.replace("[", ".").replace("]", "").split(".")[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        node["trace"] = full
    return type(spec).model_validate(data)


class TraceClock:
    """Where a link stands in its trace: the opportunity in use and the bytes left in it."""

    def __init__(self, trace: Trace, origin: float) -> None:
        self.trace = trace
        self.origin = origin  # seconds; timestamp 0 of the first period
        self._count = len(trace.times_ms)
        self._index = -1  # absolute opportunity number in use; -1: none yet
        self._left = 0

    def _time(self, index: int) -> float:
        cycle, within = divmod(index, self._count)
        return self.origin + (cycle * self.trace.period_ms + self.trace.times_ms[within]) / 1000.0

    def _first_at_or_after(self, t: float) -> int:
        ms = (t - self.origin) * 1000.0
        if ms <= 0:
            return 0
        period = self.trace.period_ms
        cycle = int(ms // period)
        within = bisect.bisect_left(self.trace.times_ms, ms - cycle * period - 1e-9)
        return cycle * self._count + within

    def finish(self, start: float, frame_bytes: int, packets: int = 1) -> tuple[float, int, int]:
        """When a frame that may start at `start` has been delivered, and the state after it
        (to `commit` if it is sent)."""
        index, left = self._index, self._left
        if index < 0 or self._time(index) < start:
            index, left = self._first_at_or_after(start), OPPORTUNITY_BYTES
        remaining = max(1, frame_bytes - ETHERNET_HEADER * packets)
        while remaining > left:
            remaining -= left
            index += 1
            left = OPPORTUNITY_BYTES
        return self._time(index), index, left - remaining

    def commit(self, index: int, left: int) -> None:
        self._index, self._left = index, left
