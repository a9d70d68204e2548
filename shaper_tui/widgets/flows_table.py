"""The spec's flow links with their own counters, then the busiest far ends seen."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.widgets import DataTable

from engine.rates import LinkRates, flow_rates
from engine.spec import DIRECTIONS, Direction, Spec
from engine.stats import DirectionStats, Talker
from engine.units import format_rate

PROTOCOLS = {0: "hop-by-hop", 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}
MAX_TALKERS = 8


def _talker_name(talker: Talker) -> str:
    protocol = PROTOCOLS.get(talker.protocol, str(talker.protocol))
    port = f":{talker.port}" if talker.port else ""
    return f"{talker.address}{port} {protocol}"


@dataclass
class _DirectionView:
    """The last two samples of one direction, enough for rates."""

    previous: DirectionStats | None = None
    current: DirectionStats | None = None
    talker_bytes: dict[str, tuple[float, int]] = field(default_factory=dict)

    def talker_rates(self) -> dict[str, float]:
        """Bits/s per far end since it was last seen, busiest first."""
        rates: dict[str, float] = {}
        if self.current is None:
            return rates
        for talker in self.current.top_talkers:
            name = _talker_name(talker)
            seen = self.talker_bytes.get(name)
            if seen is not None and self.current.at > seen[0]:
                rates[name] = max(0, talker.bytes - seen[1]) * 8 / (self.current.at - seen[0])
            else:
                rates[name] = 0.0
            self.talker_bytes[name] = (self.current.at, talker.bytes)
        return rates


class FlowsTable(DataTable[str]):
    DEFAULT_CSS = """
    FlowsTable {
        height: 1fr;
        min-height: 3;
        border: round $primary;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.border_title = "Flows and top talkers"
        self.spec = Spec()
        self.views: dict[Direction, _DirectionView] = {d: _DirectionView() for d in DIRECTIONS}

    def on_mount(self) -> None:
        self.add_columns("Flow / far end", "Down", "Up", "Drops/s", "Queue")

    def add_sample(self, stats: DirectionStats) -> None:
        view = self.views[stats.direction]
        view.previous, view.current = view.current, stats

    def refresh_rows(self) -> None:
        rates = {
            d: flow_rates(v.previous, v.current) if v.current is not None else {}
            for d, v in self.views.items()
        }
        talkers = {d: v.talker_rates() for d, v in self.views.items()}
        self.clear()
        for flow in self.spec.flows:
            down = rates["ingress"].get(flow.label, LinkRates())
            up = rates["egress"].get(flow.label, LinkRates())
            self.add_row(
                f"flow {flow.label}",
                format_rate(down.bits_out),
                format_rate(up.bits_out),
                f"{down.drops + up.drops:.0f}",
                f"{down.queue_packets}/{up.queue_packets}",
                key=f"flow:{flow.label}",
            )
        names = sorted(
            set(talkers["ingress"]) | set(talkers["egress"]),
            key=lambda n: -(talkers["ingress"].get(n, 0.0) + talkers["egress"].get(n, 0.0)),
        )
        for name in names[:MAX_TALKERS]:
            self.add_row(
                name,
                format_rate(talkers["ingress"].get(name, 0.0)),
                format_rate(talkers["egress"].get(name, 0.0)),
                "",
                "",
                key=f"talker:{name}",
            )
