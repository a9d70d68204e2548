"""Reading trace files someone else named: a regular file of bounded size, opened without
blocking on FIFOs or devices (and, for a path admitted from the network, without following any
link), parsed once per version of the file (engine/model/trace.py parses), and the checks that
a spec's traces may be read at all.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from engine.files.regular_files import READ_FLAGS, open_without_links, read_regular_fd
from engine.model.spec import Spec
from engine.model.trace import Trace, TraceError, TraceFile, parse_trace, trace_fields

#: Largest trace file read (a minute at 1 Gbit/s is ~30 MB).
MAX_TRACE_BYTES = 32 * 1024 * 1024


def file_of(status: os.stat_result, follow_links: bool) -> TraceFile:
    """The TraceFile that `status` (of the file a trace was read from) describes."""
    return TraceFile(
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
        if expected is not None and follow_links and file_of(os.stat(path), True) != expected:
            raise TraceError(f"{path}: not the file admitted (replaced or changed since)")
        fd = os.open(path, READ_FLAGS) if follow_links else open_without_links(path)
        try:
            found = file_of(os.fstat(fd), follow_links)
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


def traces_in_force(spec: Spec, files: Mapping[str, TraceFile]) -> dict[str, Trace]:
    """Every trace the spec names, by path, for the pipeline (see `traces_at`)."""
    return traces_at((path for _where, path in trace_fields(spec)), files)


def traces_at(paths: Iterable[str], files: Mapping[str, TraceFile]) -> dict[str, Trace]:
    """The traces at `paths`, by path, read from the file the gate admitted (`files`) and no
    other: one replaced or gone since (or never admitted) is left out (its link keeps its
    rate)."""
    found: dict[str, Trace] = {}
    for path in paths:
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
