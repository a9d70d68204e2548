"""Packet-delivery traces in the Mahimahi format: variable capacity from recorded networks.

A trace file has one integer per line: a millisecond at which one delivery opportunity of
1504 bytes occurs (repeated lines are several opportunities in that millisecond). The trace
repeats with a period equal to its last timestamp. Bytes are counted as Mahimahi counts them:
the IP packet (the Ethernet frame less its 14-byte header). An opportunity's bytes may be
shared by several small packets or finish part of a large one; bytes not used when it comes
are lost, as in Mahimahi.

Parsing is pure; reading a trace file (bounded, without trusting what the path names, cached
per version of the file) is the file edge's job: engine/files/trace_files.py.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from engine.model.errors import LinkshaperError
from engine.model.fields import Strict
from engine.model.spec import Spec

OPPORTUNITY_BYTES = 1504
ETHERNET_HEADER = 14


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


def trace_fields(spec: Spec) -> Iterator[tuple[str, str]]:
    """(where in the spec, path) for every trace the spec names (the place is spelled only
    for a trace found: a spec of 10,000 flows is walked at every change)."""
    for index, pair in enumerate((spec.default_link, *(flow.link for flow in spec.flows))):
        for direction, link in (("ingress", pair.ingress), ("egress", pair.egress)):
            if link.trace is not None:
                where = "default_link" if index == 0 else f"flows[{index - 1}].link"
                yield f"{where}.{direction}.trace", link.trace


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
