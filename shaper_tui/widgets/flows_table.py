"""The spec's flow links with their own counters, then the busiest far ends seen."""

from __future__ import annotations

from textual.widgets import DataTable

from engine.model.rates import LinkRates, SampleWindow, flow_rates
from engine.model.spec import DIRECTIONS, Spec
from engine.model.stats import DirectionStats, Talker
from engine.model.units import format_rate

PROTOCOLS = {0: "hop-by-hop", 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}
MAX_TALKERS = 8


def _talker_name(talker: Talker) -> str:
    protocol = PROTOCOLS.get(talker.protocol, str(talker.protocol))
    port = f":{talker.port}" if talker.port else ""
    return f"{talker.address}{port} {protocol}"


#: Rates in the table are taken over about a second of samples.
WINDOW = 1.0


class _DirectionView(SampleWindow):
    """Recent samples of one direction: the table's rates are a pure function of them."""

    def flow_rates_now(self) -> dict[str, LinkRates]:
        previous, current = self.pair()
        return flow_rates(previous, current) if current is not None else {}

    def talker_rates(self) -> dict[str, float]:
        """Bits/s per far end over the window."""
        previous, current = self.pair()
        if current is None:
            return {}
        before = {_talker_name(t): t.bytes for t in previous.top_talkers} if previous else {}
        span = current.at - previous.at if previous is not None else 0.0
        rates: dict[str, float] = {}
        for talker in current.top_talkers:
            name = _talker_name(talker)
            old = before.get(name)
            rates[name] = max(0, talker.bytes - old) * 8 / span if old is not None and span else 0.0
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
        self.views = {d: _DirectionView(WINDOW) for d in DIRECTIONS}

    def on_mount(self) -> None:
        self.add_columns("Flow / far end", "Down", "Up", "Drops/s", "Queue")

    def add_sample(self, stats: DirectionStats) -> None:
        self.views[stats.direction].add(stats)

    def refresh_rows(self) -> None:
        rates = {d: v.flow_rates_now() for d, v in self.views.items()}
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
