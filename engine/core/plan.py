"""What one direction's worker needs of a spec, in a compact form: the default link, and per
flow its label, its match compiled to numbers (`Rule`) and its link for that direction.

A spec of 10,000 flows is a million pydantic objects' worth of JSON; validated again in each
worker it stopped forwarding for seconds. The supervisor validates a spec once (the gate), and
hands each worker a `DirectionPlan`: plain tuples of numbers and strings, and each distinct
`LinkSpec` once (equal ones are one object), so it pickles small and loads in milliseconds.
The worker then rebuilds only the links whose `LinkSpec` changed (`DirectionPipeline.apply`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from engine.model.spec import DIRECTIONS, Direction, FlowMatch, LinkSpec, Spec

#: A flow's match, compiled: (label, IP version or 0 for any address, network as a number,
#: mask, protocol number or 0 for any, lowest port, highest port).
Rule = tuple[str, int, int, int, int, int, int]


def rule_of(label: str, match: FlowMatch) -> Rule:
    """`match` as the numbers the classifier looks up."""
    version, base, mask = match.address_match()
    return (label, version, base, mask, match.protocol_number, match.port_min, match.port_max)


@dataclass(frozen=True, slots=True)
class DirectionPlan:
    """One direction of a spec, as its worker puts it in force."""

    default: LinkSpec
    #: The flows in the spec's order (the first that matches wins).
    rules: tuple[Rule, ...]
    #: Each flow's link for this direction, in the same order as `rules`.
    links: tuple[LinkSpec, ...]

    def traces(self) -> Iterator[str]:
        """Every trace path its links name (once per distinct link)."""
        seen: set[int] = set()
        for link in (self.default, *self.links):
            if link.trace is not None and id(link) not in seen:
                seen.add(id(link))
                yield link.trace


class Interner:
    """Equal `LinkSpec`s made one object, across plans: the plan pickles each once, and a
    worker tells an unchanged link by identity (`is`), not by comparing fields."""

    def __init__(self) -> None:
        self._known: dict[LinkSpec, LinkSpec] = {}

    def __call__(self, link: LinkSpec) -> LinkSpec:
        known = self._known.get(link)
        if known is None:
            if len(self._known) > 4 * 65536:  # bounded: a long replay of distinct links
                self._known.clear()
            known = self._known[link] = link
        return known


def plan_of(spec: Spec, direction: Direction, intern: Interner | None = None) -> DirectionPlan:
    """`spec`'s `direction`, compiled (see DirectionPlan)."""
    return plans_of(spec, intern, (direction,))[direction]


def plans_of(
    spec: Spec, intern: Interner | None = None, directions: tuple[Direction, ...] = DIRECTIONS
) -> dict[Direction, DirectionPlan]:
    """`spec`'s `directions`, compiled (the flows' rules, the same for each, once)."""
    same = intern or Interner()
    flows = spec.flows
    rules = tuple(rule_of(flow.label, flow.flow) for flow in flows)
    plans: dict[Direction, DirectionPlan] = {}
    for direction in directions:
        links = tuple(same(flow.link.of(direction)) for flow in flows)
        plans[direction] = DirectionPlan(same(spec.link(direction)), rules, links)
    return plans
