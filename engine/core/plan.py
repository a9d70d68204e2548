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


@dataclass(frozen=True, slots=True)
class PlanDiff:
    """What changed from one plan to the next of the same flows (the same rules, in the same
    order): the default link if it changed, and each changed flow's link by its place. A
    change of a few flows in a spec of 10,000 is sent as those few, not as the whole."""

    #: The new default link, or None if it is the same.
    default: LinkSpec | None
    #: (index in the plan's flows, its new link), in order.
    links: tuple[tuple[int, LinkSpec], ...]
    #: How many flows both plans have (a diff applies only to a plan of as many).
    flows: int

    def applied_to(self, plan: DirectionPlan) -> DirectionPlan:
        """The plan this diff makes of `plan` (ValueError if it is not one of `flows`)."""
        if len(plan.links) != self.flows:
            raise ValueError(f"a diff of {self.flows} flows for a plan of {len(plan.links)}")
        links = list(plan.links)
        for index, link in self.links:
            links[index] = link
        default = plan.default if self.default is None else self.default
        return DirectionPlan(default, plan.rules, tuple(links))


def diff_plans(before: DirectionPlan, after: DirectionPlan) -> PlanDiff | None:
    """What `after` changes of `before`, or None if its flows differ (added, removed,
    reordered or matched otherwise: then the whole plan is sent). Links are compared by
    identity, as interned (`Interner`): an equal link not interned counts as changed, which
    costs only its rebuild."""
    if before.rules is not after.rules and before.rules != after.rules:
        return None
    changed = tuple(
        (index, link)
        for index, (was, link) in enumerate(zip(before.links, after.links, strict=True))
        if was is not link
    )
    default = None if after.default is before.default else after.default
    return PlanDiff(default, changed, len(after.links))


class Interner:
    """Equal `LinkSpec`s made one object, across plans: the plan pickles each once, and a
    worker tells an unchanged link by identity (`is`), not by comparing fields."""

    def __init__(self) -> None:
        self._known: dict[tuple[object, ...], LinkSpec] = {}

    def __call__(self, link: LinkSpec) -> LinkSpec:
        # Keyed by its fields' values as pydantic compares them, in a plain tuple: pydantic's
        # own hash and == (in Python, field by field) took 60 % of a 10,000-flow plan's time.
        key = tuple(link.__dict__.values())
        known = self._known.get(key)
        if known is None:
            if len(self._known) > 4 * 65536:  # bounded: a long replay of distinct links
                self._known.clear()
            known = self._known[key] = link
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
