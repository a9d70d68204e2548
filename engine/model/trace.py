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
import errno
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.model.errors import LinkshaperError
from engine.model.fields import Strict
from engine.model.files import READ_FLAGS, open_without_links, read_regular_fd

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


class TraceFile(Strict):
    """Which file a trace was read from when the gate admitted it: readers after the gate
    (the workers) read that file or nothing, and never follow a link swapped in since.
    `follow_links`: whether its path may pass through links (a trusted door's choice), or
    must be walked without following any (a path admitted from the network, stored resolved)."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    follow_links: bool = True

    @classmethod
    def of(cls, status: os.stat_result, follow_links: bool) -> TraceFile:
        return cls(
            device=status.st_dev, inode=status.st_ino, size=status.st_size,
            mtime_ns=status.st_mtime_ns, follow_links=follow_links,
        )  # fmt: skip


#: Parsed traces kept, by path and file (at most MAX_TRACE_BYTES each): a change of a rate
#: reuses the traces in force instead of reading them again; a few spare for a replay that
#: switches between traces.
TRACE_CACHE_SIZE = 32
_parsed: OrderedDict[tuple[str, TraceFile], Trace] = OrderedDict()
_parsed_lock = threading.Lock()


def _cached(key: tuple[str, TraceFile]) -> Trace | None:
    with _parsed_lock:
        trace = _parsed.get(key)
        if trace is not None:
            _parsed.move_to_end(key)
        return trace


def _keep(key: tuple[str, TraceFile], trace: Trace) -> None:
    with _parsed_lock:
        _parsed[key] = trace
        while len(_parsed) > TRACE_CACHE_SIZE:
            _parsed.popitem(last=False)


def _reason(exc: OSError, follow_links: bool) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and not follow_links:
        return "a symbolic link on its path (a trace named over HTTP is never read through one)"
    return exc.strerror or str(exc)


def read_trace(
    path: str, follow_links: bool = True, expected: TraceFile | None = None
) -> tuple[Trace, TraceFile]:
    """The trace at `path` and the file it was read from: a regular file of at most
    MAX_TRACE_BYTES, read without blocking on FIFOs or devices, parsed once per version of
    the file. Without `follow_links`, `path` (absolute) is walked without following any link.
    With `expected`, only that very file (else TraceError): what the gate admitted, known
    without touching the disk if it was parsed before."""
    if expected is not None:
        follow_links = expected.follow_links
        known = _cached((path, expected))
        if known is not None:
            return known, expected
    try:
        # Not even opened unless it looks like the admitted file (a device's open may act).
        if expected is not None and follow_links and TraceFile.of(os.stat(path), True) != expected:
            raise TraceError(f"{path}: not the file admitted (replaced or changed since)")
        fd = os.open(path, READ_FLAGS) if follow_links else open_without_links(path)
        try:
            found = TraceFile.of(os.fstat(fd), follow_links)
            if expected is not None and found != expected:
                raise TraceError(f"{path}: not the file admitted (replaced or changed since)")
            known = _cached((path, found))
            if known is not None:
                return known, found
            data = read_regular_fd(fd, MAX_TRACE_BYTES)
        finally:
            os.close(fd)
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {_reason(exc, follow_links)}") from None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not a trace (byte {exc.start} is not ASCII)") from None
    trace = parse_trace(text, path)
    _keep((path, found), trace)
    return trace, found


def load_trace(path: str) -> Trace:
    """The trace at `path` as it is now (links followed): see `read_trace`."""
    return read_trace(path)[0]


def trace_fields(spec: Spec) -> Iterator[tuple[str, str]]:
    """(where in the spec, path) for every trace the spec names."""
    pairs = [("default_link", spec.default_link)]
    pairs += [(f"flows[{i}].link", flow.link) for i, flow in enumerate(spec.flows)]
    for where, pair in pairs:
        for direction in ("ingress", "egress"):
            path = pair.of(direction).trace
            if path is not None:
                yield f"{where}.{direction}.trace", path


def traces_in_force(spec: Spec, files: Mapping[str, TraceFile]) -> dict[str, Trace]:
    """Every trace the spec names, by path, for the pipeline, read from the file the gate
    admitted (`files`) and no other: one replaced or gone since (or never admitted) is left
    out (its link keeps its rate)."""
    found: dict[str, Trace] = {}
    for _where, path in trace_fields(spec):
        admitted = files.get(path)
        if admitted is not None and path not in found:
            with contextlib.suppress(TraceError):
                found[path] = read_trace(path, expected=admitted)[0]
    return found


def check_traces(spec: Spec) -> None:
    """Read every trace the spec names (off any event loop: this may wait on a disk), or a
    TraceError that names the field. Called where a spec is applied, not where it is parsed."""
    read_traces(spec, {}, set(), follow_links=True)


def read_traces(
    spec: Spec, in_force: Mapping[str, TraceFile], fresh: set[str], follow_links: bool
) -> dict[str, TraceFile]:
    """The file of every trace the spec names: the one in force (`in_force`, not read again)
    unless its path is in `fresh` or it is new, then read now (see `read_trace`); TraceError
    names the field."""
    files: dict[str, TraceFile] = {}
    for where, path in trace_fields(spec):
        if path in files:
            continue
        if path in in_force and path not in fresh:
            files[path] = in_force[path]
            continue
        try:
            files[path] = read_trace(path, follow_links)[1]
        except TraceError as exc:
            raise TraceError(f"{where}: {exc}") from None
    return files


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
