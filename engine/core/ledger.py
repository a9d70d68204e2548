"""The stats ledger of one direction: every link's cumulative counters added into the
direction's totals by differences, so that a report looks only at the links that may have
changed (ten thousand idle flow links cost nothing per report), with the gauges, the far ends
and the measured delays beside them."""

from __future__ import annotations

from engine.core.delay_line import DelaySamples
from engine.core.far_ends import FarEnds
from engine.core.link import Link
from engine.model.spec import Direction
from engine.model.stats import DirectionStats, Drops, LinkStats

#: The counters that only grow; the rest of LinkStats are gauges (what is held now).
_CUMULATIVE = (
    "packets_in", "bytes_in", "packets_out", "bytes_out", "past_queue", "ecn_marked", "duplicated",
    "corrupted", "reordered", "connections_untracked", "held", "injected",
)  # fmt: skip


def _quantile(ordered: list[float], q: float) -> float:
    """The `q` quantile of sorted values (the nearest rank), 0 for none."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class StatsLedger:
    """What a direction reports: `links` is the direction's label → live link (the
    pipeline's own dict, read as it stands at each report)."""

    def __init__(
        self, direction: Direction, links: dict[str, Link], delays: DelaySamples, far_ends: FarEnds
    ) -> None:
        self._direction: Direction = direction
        self._links = links
        self._delays = delays
        self._far_ends = far_ends
        #: Links whose counters may have changed since the last stats (a frame came, they
        #: were configured or flushed); with the busy and retired ones, the only links a
        #: report looks at, so ten thousand idle flow links cost nothing per report.
        self.touched: set[Link] = set()
        #: Retired links that finished draining since the last stats: counted once more.
        self.finished: list[Link] = []
        #: Each link's label, as long as the ledger counts it.
        self.labels: dict[Link, str] = {}
        #: Each link's stats as last added into the totals, and the totals: every link's
        #: cumulative counters (live, retired and gone), kept up to date by differences.
        self._counted: dict[Link, LinkStats] = {}
        self._totals: dict[str, int] = dict.fromkeys(_CUMULATIVE, 0)
        self._drop_totals: dict[str, int] = dict.fromkeys(Drops.model_fields, 0)
        #: Connections every counted link tracks now, kept by differences as the counters
        #: are: an idle link (not looked at) still tracks its connections.
        self._connections = 0

    def report(
        self, now: float, busy: set[Link], retired: list[Link], changed_only: bool
    ) -> DirectionStats:
        """Counters of the direction and of each link; with `changed_only`, `flows` holds only
        the links whose counters changed since the last call (what a worker sends up)."""
        looked_at = self.touched | busy
        looked_at.update(retired)
        looked_at.update(self.finished)
        total, changed = self._count(looked_at)
        for link in self.finished:
            gone = self._counted.pop(link, None)
            if gone is not None:
                self._connections -= gone.connections
            self.labels.pop(link, None)
        self.finished.clear()
        self.touched.clear()
        if changed_only:
            flows = changed
        else:
            flows = {label: link.stats() for label, link in self._links.items()}
        delays = self._delays.take()
        return DirectionStats(
            direction=self._direction,
            at=now,
            total=total,
            flows=flows,
            flows_changed_only=changed_only,
            top_talkers=self._far_ends.top(),
            delay_samples=len(delays),
            delay_p50_ms=_quantile(delays, 0.5) * 1000.0,
            delay_p99_ms=_quantile(delays, 0.99) * 1000.0,
        )

    def _count(self, looked_at: set[Link]) -> tuple[LinkStats, dict[str, LinkStats]]:
        """The direction's totals, with what changed of `looked_at` added in, and the stats
        of the live links among them that changed."""
        changed: dict[str, LinkStats] = {}
        queue_packets = queue_bytes = in_flight = held_bytes = 0
        queue_delay = 0.0
        counted = self._counted
        totals, drop_totals = self._totals, self._drop_totals
        for link in looked_at:
            now_stats = link.stats()
            before = counted.get(link)
            if before is not now_stats:
                for name in _CUMULATIVE:
                    totals[name] += getattr(now_stats, name) - (
                        getattr(before, name) if before else 0
                    )
                for name in drop_totals:
                    drop_totals[name] += getattr(now_stats.drops, name) - (
                        getattr(before.drops, name) if before else 0
                    )
                self._connections += now_stats.connections - (before.connections if before else 0)
                counted[link] = now_stats
                label = self.labels.get(link)
                if label is not None and self._links.get(label) is link:
                    changed[label] = now_stats
            # Gauges: a link looked at by nobody here is idle, and holds nothing.
            queue_packets += now_stats.queue_packets
            queue_bytes += now_stats.queue_bytes
            in_flight += now_stats.in_flight
            held_bytes += now_stats.held_bytes
            queue_delay = max(queue_delay, now_stats.queue_delay_ms)
        total = LinkStats(
            **totals,
            drops=Drops(**drop_totals),
            queue_packets=queue_packets,
            queue_bytes=queue_bytes,
            queue_delay_ms=queue_delay,
            in_flight=in_flight,
            held_bytes=held_bytes,
            connections=self._connections,
        )
        return total, changed
