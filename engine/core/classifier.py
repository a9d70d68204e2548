"""Flow matching: which link a packet takes. The first matching flow wins; else `default`.

Rules are looked up, not scanned: they are indexed by address prefix (one dict per prefix
length in use), so a packet costs a few dict lookups however many flows there are, and the
answer for each far end (address, protocol, port) is remembered in a bounded cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.core.frames import PROTO_TCP, PROTO_UDP, FlowKey
from engine.core.plan import Rule, rule_of
from engine.model.spec import Direction, FlowSpec

DEFAULT_LABEL = "default"
#: Far ends whose answer is remembered; the cache starts afresh when it is full.
CACHE_SIZE = 8192


@dataclass(frozen=True, slots=True)
class _Rule:
    order: int  # the flow's place in the spec: the lowest matching one wins
    label: str
    version: int  # 0: any address
    network: int
    mask: int
    protocol: int
    port_min: int
    port_max: int

    def takes(self, protocol: int, port: int) -> bool:
        """Whether the rule's protocol and ports match (its address matched already)."""
        if not self.protocol:
            return True
        if protocol != self.protocol:
            return False
        if self.protocol in (PROTO_TCP, PROTO_UDP):
            return self.port_min <= port <= self.port_max
        return True


class Classifier:
    """Compiled flow rules for one direction.

    Ingress packets come from the far side, so their source is matched; egress packets go to
    it, so their destination is matched. That is the seed's rule.
    """

    def __init__(self, rules: Sequence[Rule], direction: Direction) -> None:
        """`rules`: the flows' matches, compiled (`engine.core.plan.rule_of`), in order."""
        self._match_source = direction == "ingress"
        self._keys: list[Rule] = []
        self._rules: list[_Rule] = []
        self._any_address: list[_Rule] = []
        #: version -> [(mask, {network: rules in order})], one entry per prefix length used.
        self._by_prefix: dict[int, list[tuple[int, dict[int, list[_Rule]]]]] = {4: [], 6: []}
        self._tables: dict[tuple[int, int], dict[int, list[_Rule]]] = {}
        self._cache: dict[tuple[int, int, int, int], str] = {}
        for rule in rules:
            self.add(rule)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """What it was built from: a pipeline given the same rules keeps this classifier."""
        return tuple(self._keys)

    def add(self, key: Rule) -> None:
        """One more flow's rule, after those it has (a classifier of thousands is built a
        few at a time beside the one in force: see engine.core.rebuild)."""
        label, version, base, mask, protocol, port_min, port_max = key
        rule = _Rule(len(self._rules), label, version, base, mask, protocol, port_min, port_max)
        self._keys.append(key)
        self._rules.append(rule)
        self._cache.clear()
        if version == 0:
            self._any_address.append(rule)
            return
        table = self._tables.get((version, mask))
        if table is None:
            table = self._tables[(version, mask)] = {}
            self._by_prefix[version].append((mask, table))
        table.setdefault(base, []).append(rule)

    @classmethod
    def of_flows(cls, flows: Sequence[FlowSpec], direction: Direction) -> Classifier:
        """The classifier of a spec's flows."""
        return cls([rule_of(flow.label, flow.flow) for flow in flows], direction)

    @property
    def empty(self) -> bool:
        return not self._rules

    def classify(self, key: FlowKey) -> str:
        if key.version == 0:
            return DEFAULT_LABEL  # non-IP frames (ARP...) never match a flow, as in the seed
        if self._match_source:
            address, port = key.src, key.sport
        else:
            address, port = key.dst, key.dport
        ident = (key.version, address, key.protocol, port)
        label = self._cache.get(ident)
        if label is None:
            label = self._lookup(key.version, address, key.protocol, port)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[ident] = label
        return label

    def _lookup(self, version: int, address: int, protocol: int, port: int) -> str:
        best: _Rule | None = None
        for rule in self._any_address:
            if rule.takes(protocol, port):
                best = rule
                break
        for mask, table in self._by_prefix.get(version, ()):
            for rule in table.get(address & mask, ()):
                if best is not None and rule.order >= best.order:
                    break
                if rule.takes(protocol, port):
                    best = rule
                    break
        return DEFAULT_LABEL if best is None else best.label
