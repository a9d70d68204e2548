"""The spec's flow links with their own counters, then the busiest far ends seen lately.

Rows are updated in place (`update_cell`) while the same rows are shown, so the cursor and the
scroll position stay put; the rows are laid out afresh only when the set of them changes. A far
end that carried nothing for IDLE_HIDE (a host's occasional IPv6 multicast chatter, say) is
left out.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from engine.model.rates import LinkRates, SampleWindow, flow_rates
from engine.model.spec import DIRECTIONS, Spec
from engine.model.stats import DirectionStats, Talker
from engine.model.units import format_rate

PROTOCOLS = {0: "hop-by-hop", 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}
#: Far ends kept as rows: enough to fill the table at its tallest (13 rows above 48 rows:
#: the app's breakpoints), from the ten busiest the engine reports each direction.
MAX_TALKERS = 13
#: A far end that carried nothing for this long (seconds of the engine's clock) is not shown.
IDLE_HIDE = 60.0
#: Each column's label and width: fixed, so that a figure that grows (`3.42 Mbit/s` after
#: `0 bit/s`) is never cut to the width its first value had; at 80 columns they all fit.
COLUMNS = (("Flow / far end", 28), ("Down", 11), ("Up", 11), ("Drops/s", 7), ("Queue", 11))


def _talker_name(talker: Talker) -> str:
    """`address:port protocol`; an IPv6 address with a port is bracketed
    (`[2001:db8::1]:443 tcp`), so the port is not read as part of it."""
    protocol = PROTOCOLS.get(talker.protocol, str(talker.protocol))
    address = talker.address
    if talker.port and ":" in address:
        address = f"[{address}]"
    port = f":{talker.port}" if talker.port else ""
    return f"{address}{port} {protocol}"


def _split_name(name: str) -> tuple[str, str]:
    """A far end's name as its address and what follows (`:port protocol`)."""
    address, _, protocol = name.rpartition(" ")
    end = address.rfind("]") + 1 if address.startswith("[") else address.rfind(":")
    if end <= 0 or (not address.startswith("[") and address.count(":") > 1):
        end = len(address)  # no port, or an IPv6 address without one
    return address[:end], f"{address[end:]} {protocol}"


#: The widest the name column grows to (an IPv6 address, its port and protocol).
NAME_MAX = 52


def _fit(name: str, width: int, tail: str = "") -> str:
    """`name` + `tail` in `width`: if too long, the middle of `name` gives way to `…` (an
    address keeps its first and last groups, which tell hosts apart, and its port and
    protocol), never cut silently at the column's edge."""
    if len(name) + len(tail) <= width:
        return name + tail
    room = width - len(tail) - 1
    if room < 6:
        whole = name + tail
        return f"{whole[: width - 1]}…"
    left = (room + 1) // 2
    return f"{name[:left]}…{name[len(name) - (room - left) :]}{tail}"


#: Rates in the table are taken over about a second of samples.
WINDOW = 1.0


class _DirectionView(SampleWindow):
    """Recent samples of one direction: the table's rates are a pure function of them, and
    when each far end last carried something."""

    def __init__(self, span: float) -> None:
        super().__init__(span)
        self.last_active: dict[str, float] = {}

    def add(self, stats: DirectionStats) -> None:
        previous = self.samples[-1] if self.samples else None
        super().add(stats)
        before = {_talker_name(t): t.bytes for t in previous.top_talkers} if previous else {}
        for talker in stats.top_talkers:
            name = _talker_name(talker)
            if talker.bytes > before.get(name, 0):
                self.last_active[name] = stats.at
        if len(self.last_active) > 4 * MAX_TALKERS * 64:  # forget the long idle
            horizon = stats.at - IDLE_HIDE
            self.last_active = {n: t for n, t in self.last_active.items() if t >= horizon}

    def flow_rates_now(self) -> dict[str, LinkRates]:
        previous, current = self.pair()
        return flow_rates(previous, current) if current is not None else {}

    def talker_rates(self) -> dict[str, float]:
        """Bits/s per far end over the window, for those active within IDLE_HIDE."""
        previous, current = self.pair()
        if current is None:
            return {}
        before = {_talker_name(t): t.bytes for t in previous.top_talkers} if previous else {}
        span = current.at - previous.at if previous is not None else 0.0
        horizon = current.at - IDLE_HIDE
        rates: dict[str, float] = {}
        for talker in current.top_talkers:
            name = _talker_name(talker)
            if self.last_active.get(name, float("-inf")) < horizon:
                continue
            old = before.get(name)
            rates[name] = max(0, talker.bytes - old) * 8 / span if old is not None and span else 0.0
        return rates


class FlowsTable(DataTable[Text]):
    DEFAULT_CSS = """
    FlowsTable {
        height: auto;
        border: round $primary;
        /* It takes no focus, so nobody scrolls it: a scrollbar only took a row and, its two
           columns pushing the fixed ones over 80, another for a horizontal one. The busiest
           come first; the border says how many more there are. */
        overflow: hidden hidden;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.border_title = "Flows and top talkers"
        self.spec = Spec()
        self.views = {d: _DirectionView(WINDOW) for d in DIRECTIONS}
        self._columns: list[ColumnKey] = []
        self._shown: dict[str, tuple[str, ...]] = {}
        #: The name column's width: COLUMNS' at 80 columns, more (up to NAME_MAX) if wider.
        self.name_width = COLUMNS[0][1]

    def on_mount(self) -> None:
        self._columns = [self.add_column(label, width=width) for label, width in COLUMNS]

    def on_resize(self) -> None:
        """A wider table gives the names the room (an IPv6 far end, say); the rows are laid
        out afresh at the next refresh, with names cut to the new width. (Rows may have come
        before the table's height was laid out: how many are left out is said again.)"""
        self._tell_left_out()
        if not self._columns:
            return
        others = sum(width for _, width in COLUMNS[1:]) + 2 * len(COLUMNS)  # cell padding
        room = self.scrollable_content_region.width - others - 2
        width = max(COLUMNS[0][1], min(NAME_MAX, room))
        if width != self.name_width:
            self.name_width = width
            self.columns[self._columns[0]].width = width
            self._require_update_dimensions = True
            self._shown = {}
            self.refresh_rows()

    def add_sample(self, stats: DirectionStats) -> None:
        self.views[stats.direction].add(stats)

    def wanted_rows(self) -> dict[str, tuple[str, ...]]:
        """What the table should show now, by row key, in order."""
        rates = {d: v.flow_rates_now() for d, v in self.views.items()}
        talkers = {d: v.talker_rates() for d, v in self.views.items()}
        rows: dict[str, tuple[str, ...]] = {}
        for flow in self.spec.flows:
            down = rates["ingress"].get(flow.label, LinkRates())
            up = rates["egress"].get(flow.label, LinkRates())
            rows[f"flow:{flow.label}"] = (
                _fit(f"flow {flow.label}", self.name_width),
                format_rate(down.bits_out),
                format_rate(up.bits_out),
                f"{down.drops + up.drops:.0f}",
                f"{down.queue_packets}/{up.queue_packets}",
            )
        names = sorted(
            set(talkers["ingress"]) | set(talkers["egress"]),
            key=lambda n: -(talkers["ingress"].get(n, 0.0) + talkers["egress"].get(n, 0.0)),
        )
        cut: list[str] = []
        for name in names[:MAX_TALKERS]:
            address, tail = _split_name(name)
            shown = _fit(address, self.name_width, tail)
            if shown != name:
                cut.append(name)
            rows[f"talker:{name}"] = (
                shown,
                format_rate(talkers["ingress"].get(name, 0.0)),
                format_rate(talkers["egress"].get(name, 0.0)),
                "",
                "",
            )
        # The far ends shortened in the table, in full where the pointer rests on it.
        self.tooltip = "\n".join(["Far ends in full:", *cut]) if cut else None
        return rows

    def refresh_rows(self) -> None:
        rows = self.wanted_rows()
        if list(rows) != list(self._shown):  # (the order too: keys() compare as sets)
            self.clear()
            for key, cells in rows.items():
                self.add_row(*map(Text, cells), key=key)  # labels as typed, not markup
        else:
            for key, cells in rows.items():
                for column, old, new in zip(self._columns, self._shown[key], cells, strict=True):
                    if old != new:
                        self.update_cell(key, column, Text(new))
        self._shown = rows
        self._tell_left_out()

    def _tell_left_out(self) -> None:
        room = self.scrollable_content_region.height - self.header_height
        left_out = len(self._shown) - room if room > 0 else 0
        subtitle = f"{left_out} more" if left_out > 0 else None
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle
