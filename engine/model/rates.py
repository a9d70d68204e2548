"""Rates from cumulative counters: what the CLI, the demo and the TUI show.

Workers report running totals (so a missed sample loses nothing); every reader turns two
samples into per-second figures the same way, here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from engine.model.stats import DirectionStats, LinkStats


@dataclass(frozen=True)
class LinkRates:
    """Per-second figures of one link between two samples, plus its queue now."""

    bits_in: float = 0.0
    bits_out: float = 0.0
    packets_in: float = 0.0
    packets_out: float = 0.0
    #: Wire packets that got through the queue and the rate limiter to the impairments.
    past_queue: float = 0.0
    loss_drops: float = 0.0
    queue_drops: float = 0.0
    blocked_drops: float = 0.0
    #: Drops by the queue's AQM, drops while an outage was on, and CE marks instead of drops.
    aqm_drops: float = 0.0
    outage_drops: float = 0.0
    #: Drops by a connection fault: `blackhole`'s, and the segments a `reset`/`limit_data` fired on.
    fault_drops: float = 0.0
    ecn_marks: float = 0.0
    queue_packets: int = 0
    queue_delay_ms: float = 0.0

    @property
    def drops(self) -> float:
        return self.lost_drops + self.queue_drops + self.aqm_drops

    @property
    def lost_drops(self) -> float:
        """Drops on the way (random loss, a blocked link, an outage, a connection fault), not
        by the queue."""
        return self.loss_drops + self.blocked_drops + self.outage_drops + self.fault_drops

    @property
    def loss_share(self) -> float:
        """Random, blocked, outage and connection-fault drops, as a share of the packets that
        came in."""
        return self.lost_drops / self.packets_in if self.packets_in > 0 else 0.0

    @property
    def impairment_share(self) -> float:
        """Random and burst loss as a share of what reached the impairments (the loss set
        applies there: the queue's drops before it are not part of this)."""
        return self.loss_drops / self.past_queue if self.past_queue > 0 else 0.0

    @classmethod
    def between(cls, previous: LinkStats | None, current: LinkStats, span: float) -> LinkRates:
        """`previous` None, or a span that is not positive, gives rates of zero."""
        now = cls(queue_packets=current.queue_packets, queue_delay_ms=current.queue_delay_ms)
        if previous is None or span <= 0:
            return now

        def per_second(new: int, old: int) -> float:
            # A restarted worker starts counting from zero again: no negative rates.
            return max(0, new - old) / span

        return cls(
            bits_in=per_second(current.bytes_in, previous.bytes_in) * 8,
            bits_out=per_second(current.bytes_out, previous.bytes_out) * 8,
            packets_in=per_second(current.packets_in, previous.packets_in),
            packets_out=per_second(current.packets_out, previous.packets_out),
            past_queue=per_second(current.past_queue, previous.past_queue),
            loss_drops=per_second(current.drops.loss, previous.drops.loss),
            queue_drops=per_second(current.drops.queue_full, previous.drops.queue_full),
            blocked_drops=per_second(current.drops.blocked, previous.drops.blocked),
            aqm_drops=per_second(current.drops.aqm, previous.drops.aqm),
            outage_drops=per_second(current.drops.outage, previous.drops.outage),
            fault_drops=per_second(
                current.drops.blackholed + current.drops.reset,
                previous.drops.blackholed + previous.drops.reset,
            ),
            ecn_marks=per_second(current.ecn_marked, previous.ecn_marked),
            queue_packets=current.queue_packets,
            queue_delay_ms=current.queue_delay_ms,
        )


def direction_rates(previous: DirectionStats | None, current: DirectionStats) -> LinkRates:
    """The whole direction's rates between two samples of the same worker."""
    if previous is None or previous.pid != current.pid:
        return LinkRates.between(None, current.total, 0.0)
    return LinkRates.between(previous.total, current.total, current.at - previous.at)


def flow_rates(previous: DirectionStats | None, current: DirectionStats) -> dict[str, LinkRates]:
    """Each flow link's rates between two samples, by label."""
    usable = previous is not None and previous.pid == current.pid
    span = current.at - previous.at if previous is not None and usable else 0.0
    result: dict[str, LinkRates] = {}
    for label, stats in current.flows.items():
        before = previous.flows.get(label) if previous is not None and usable else None
        result[label] = LinkRates.between(before, stats, span)
    return result


class SampleWindow:
    """Recent samples of one direction, so that rates are taken over about `seconds`: steady
    enough to read at ten samples a second, recent enough to show a change at once."""

    def __init__(self, seconds: float, capacity: int = 64) -> None:
        self.seconds = seconds
        self.samples: deque[DirectionStats] = deque(maxlen=capacity)
        #: The newest sample's time when the settings last changed (see `mark_change`).
        self.changed_at = float("-inf")

    def add(self, stats: DirectionStats) -> None:
        if self.samples and self.samples[-1].pid != stats.pid:
            self.samples.clear()  # a restarted worker counts from zero
        self.samples.append(stats)

    def mark_change(self) -> None:
        """The settings changed: what the link did under the old ones (its delays, its loss
        share) stops counting from the newest sample on."""
        self.changed_at = self.samples[-1].at if self.samples else float("-inf")

    def pair(self) -> tuple[DirectionStats | None, DirectionStats | None]:
        """(the newest sample at least `seconds` older than the newest, or the oldest; the
        newest). The first is None while there is only one sample."""
        if not self.samples:
            return None, None
        current = self.samples[-1]
        base = self.samples[0]
        for sample in self.samples:
            if current.at - sample.at >= self.seconds:
                base = sample
        return (base if base is not current else None), current

    def _start(self, seconds: float) -> float:
        return max(self.changed_at, self.samples[-1].at - seconds)

    def since_change(self, seconds: float) -> list[DirectionStats]:
        """The samples made after the last change and within `seconds` of the newest."""
        if not self.samples:
            return []
        start = self._start(seconds)
        return [s for s in self.samples if s.at > start]

    def span_since_change(self, seconds: float) -> tuple[DirectionStats | None, DirectionStats]:
        """Like `pair`, over as much as there is since the last change, up to `seconds` (the
        sample at the change is the base: counters differ from it): for a share that needs
        many packets to read steadily. Only call with samples."""
        start = self._start(seconds)
        base = next(s for s in self.samples if s.at >= start)
        current = self.samples[-1]
        return (base if base is not current else None), current
