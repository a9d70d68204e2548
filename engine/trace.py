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
import os
from dataclasses import dataclass
from functools import lru_cache

OPPORTUNITY_BYTES = 1504
ETHERNET_HEADER = 14


class TraceError(ValueError):
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
    times: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            value = int(stripped)
        except ValueError:
            raise TraceError(f"{name} line {number}: {stripped!r} is not an integer") from None
        if value < 0 or (times and value < times[-1]):
            raise TraceError(f"{name} line {number}: {value} goes back in time")
        times.append(value)
    if not times or times[-1] <= 0:
        raise TraceError(f"{name}: no opportunities after 0 ms (an empty trace)")
    return Trace(tuple(times))


@lru_cache(maxsize=32)
def _load(path: str, _mtime: float, _size: int) -> Trace:
    with open(path) as handle:
        return parse_trace(handle.read(), path)


def load_trace(path: str) -> Trace:
    """The trace at `path`, read once per version of the file."""
    try:
        status = os.stat(path)
        return _load(path, status.st_mtime, status.st_size)
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror}") from None


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
