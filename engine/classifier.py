"""Flow matching: which link a packet takes. The first matching flow wins; else `default`."""

from __future__ import annotations

from dataclasses import dataclass

from engine.frames import PROTO_TCP, PROTO_UDP, FlowKey
from engine.spec import Direction, FlowSpec

DEFAULT_LABEL = "default"


@dataclass(frozen=True, slots=True)
class _Rule:
    label: str
    version: int  # 0: any address
    network: int
    mask: int
    protocol: int
    port_min: int
    port_max: int


class Classifier:
    """Compiled flow rules for one direction.

    Ingress packets come from the far side, so their source is matched; egress packets go to
    it, so their destination is matched. That is the seed's rule.
    """

    def __init__(self, flows: list[FlowSpec], direction: Direction) -> None:
        self._match_source = direction == "ingress"
        self._rules: list[_Rule] = []
        for flow in flows:
            network = flow.flow.network
            if network is None:
                version, base, mask = 0, 0, 0
            else:
                version = network.version
                bits = network.max_prefixlen
                mask = ((1 << bits) - 1) ^ ((1 << (bits - network.prefixlen)) - 1)
                base = int(network.network_address)
            self._rules.append(
                _Rule(
                    flow.label,
                    version,
                    base,
                    mask,
                    flow.flow.protocol_number,
                    flow.flow.port_min,
                    flow.flow.port_max,
                )
            )

    @property
    def empty(self) -> bool:
        return not self._rules

    def classify(self, key: FlowKey) -> str:
        if key.version == 0:
            return DEFAULT_LABEL  # non-IP frames (ARP...) never match a flow, as in the seed
        address = key.src if self._match_source else key.dst
        port = key.sport if self._match_source else key.dport
        for rule in self._rules:
            if rule.version and (
                key.version != rule.version or (address & rule.mask) != rule.network
            ):
                continue
            if rule.protocol:
                if key.protocol != rule.protocol:
                    continue
                if rule.protocol in (PROTO_TCP, PROTO_UDP) and not (
                    rule.port_min <= port <= rule.port_max
                ):
                    continue
            return rule.label
        return DEFAULT_LABEL
