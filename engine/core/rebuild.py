"""A new plan made ready beside the links in force, a few links at a time, then put in force
in one step (`DirectionPipeline.stage`, `build`).

A worker is one thread: building the links of 10,000 new flows at once stopped forwarding for
half a second. Staged, the links and the classifier a plan needs are made in slices between
the worker's rounds of forwarding, while frames still take the links in force; the swap then
only moves ready objects into place. Links whose spec did not change are not touched at all
(their queue, counters and state go on); changed ones are re-configured in the same slices
(a link keeps what it holds through a change), so for the few milliseconds of a build some
flows have their new settings before others.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping

from engine.core.classifier import DEFAULT_LABEL, Classifier
from engine.core.delay_line import DelaySamples, HeldBudget
from engine.core.fates import FateLog
from engine.core.ledger import StatsLedger
from engine.core.link import Link
from engine.core.plan import DirectionPlan, Interner, plan_of
from engine.model.spec import Direction, LinkSpec, Spec
from engine.model.trace import Trace

#: Links left as they are per step of a build (each costs a lookup and a comparison).
UNCHANGED_STEP = 64
#: Makes a link for a label, with the trace its spec names, at a time.
MakeLink = Callable[[str, LinkSpec, "Trace | None", float], Link]


class Staging:
    """What `plan` needs that the links in force (`live`) do not have, made by `step`."""

    def __init__(
        self,
        plan: DirectionPlan,
        direction: Direction,
        live: Mapping[str, Link],
        classifier: Classifier,
        traces: Mapping[str, Trace],
        make: MakeLink,
        intern: Interner,
        ready_made: Mapping[str, Link] | None = None,
    ) -> None:
        """`intern` makes equal link specs one object (see plan.Interner); `ready_made`: links
        an earlier staging made and never put in force (a plan that came while one was being
        built): those of the same spec are taken over. Nothing is done here: see `step`."""
        self.plan = plan
        self.traces = traces
        #: Each label's link spec, filled in as the steps go.
        self.wanted: dict[str, LinkSpec] = {}
        #: Links made for labels not in force, and labels whose link took a new spec.
        self.new_links: dict[str, Link] = {}
        self.changed: list[str] = []
        #: What the swap would otherwise find by touching all 10,000 links at once (some
        #: 10-100 ms that forwarding would wait for: issue 38), found as the steps go: the
        #: changed labels whose link holds frames (reported next), the least delay of any
        #: link wanted (`read_slack`), and the labels in force that are not wanted.
        self.busy: list[str] = []
        self.least_delay = float("inf")
        self.gone: list[str] = []
        #: The classifier to put in force (the one in force if the rules are the same).
        self.classifier: Classifier | None = None
        self._work = self._steps(direction, live, classifier, make, intern, ready_made or {})
        self.ready = False
        self._now = 0.0

    def step(self, now: float, count: int) -> bool:
        """Make up to `count` more links or rules; True once all are ready."""
        self._now = now
        for _ in range(count):
            if not next(self._work, False):
                self.ready = True
                break
        return self.ready

    def _steps(
        self,
        direction: Direction,
        live: Mapping[str, Link],
        classifier: Classifier,
        make: MakeLink,
        intern: Interner,
        ready_made: Mapping[str, Link],
    ) -> Iterator[bool]:
        """A step (a yield) per link made or changed, per rule added, and per UNCHANGED_STEP
        links left as they are."""
        plan = self.plan
        if classifier.rules == plan.rules:
            self.classifier = classifier
        yield True
        same: dict[int, LinkSpec] = {}  # (each distinct object interned once)
        labels = (DEFAULT_LABEL, *(rule[0] for rule in plan.rules))
        for index, (label, given) in enumerate(
            zip(labels, (plan.default, *plan.links), strict=True)
        ):
            spec = same.get(id(given))
            if spec is None:
                spec = same[id(given)] = intern(given)
            self.wanted[label] = spec
            link = live.get(label)
            if link is not None and link.spec is spec and spec.trace is None:
                self.least_delay = min(self.least_delay, link.least_delay)
                if index % UNCHANGED_STEP == 0:
                    yield True
                continue
            trace = self.traces.get(spec.trace) if spec.trace is not None else None
            if link is not None:
                link.configure(spec, self._now, trace)  # (keeps what it holds)
                self.changed.append(label)
                if not link.idle:  # (one that takes a frame later is touched then)
                    self.busy.append(label)
            else:
                made = ready_made.get(label)
                if made is None or made.spec is not spec or spec.trace is not None:
                    made = make(label, spec, trace, self._now)
                self.new_links[label] = link = made
            self.least_delay = min(self.least_delay, link.least_delay)
            yield True
        wanted = self.wanted
        for index, label in enumerate(live):  # (the links in force change only at the swap)
            if label not in wanted:
                self.gone.append(label)
            if index % UNCHANGED_STEP == 0:
                yield True
        if self.classifier is None:
            building = Classifier((), direction)
            for rule in plan.rules:
                building.add(rule)
                yield True
            self.classifier = building


class Rebuilds:
    """How a `DirectionPipeline` takes a new spec or plan: staged, built, swapped in."""

    direction: Direction
    spec: Spec
    fates: FateLog | None
    read_slack: float
    _links: dict[str, Link]
    _busy: set[Link]
    _retired: list[Link]
    _ledger: StatsLedger
    _touched: set[Link]
    _classifier: Classifier
    _interner: Interner
    _staging: Staging | None
    #: The plan staged last (in force once built): what a `PlanDiff` applies to.
    plan: DirectionPlan
    _rng: random.Random
    _budget: HeldBudget
    _delays: DelaySamples

    def _choose_straight(self) -> None:
        raise NotImplementedError

    def configure(self, spec: Spec, now: float, traces: Mapping[str, Trace] | None = None) -> None:
        """Apply a new spec, with its traces parsed (path → trace; one missing could not be
        read, and that link's rate stands): see `apply`."""
        self.apply(plan_of(spec, self.direction), now, traces)
        self.spec = spec  # (as given: one put in force by `apply` leaves it as it was)

    def apply(
        self, plan: DirectionPlan, now: float, traces: Mapping[str, Trace] | None = None
    ) -> int:
        """Put `plan` in force now (see `stage`); the number of links made or re-configured."""
        self.stage(plan, now, traces)
        return self.build(now, 1 << 62)

    def stage(
        self, plan: DirectionPlan, now: float, traces: Mapping[str, Trace] | None = None
    ) -> None:
        """Begin to make `plan` ready beside the links in force, which forward meanwhile:
        `build` makes it and puts it in force (engine.core.rebuild). Only links whose spec
        changed (or that follow a trace) are touched; links of removed flows drain, then go."""
        before = self._staging
        self.plan = plan
        self._staging = Staging(
            plan, self.direction, self._links, self._classifier, traces or {}, self._new_link,
            self._interner, before.new_links if before is not None else None,
        )  # fmt: skip

    @property
    def building(self) -> bool:
        """Whether a staged plan waits for `build`."""
        return self._staging is not None

    def build(self, now: float, count: int) -> int:
        """Make up to `count` more of the staged plan; once it is ready, put it in force in one
        step: -1 until then, after that the number of links made or re-configured."""
        staging = self._staging
        if staging is None or not staging.step(now, count):
            return -1
        self._staging = None
        for label in staging.gone:
            gone = self._links.pop(label)
            self._busy.discard(gone)
            self._retired.append(gone)
        labels = self._ledger.labels
        for label, link in staging.new_links.items():
            self._links[label] = link
            labels[link] = label
            # (not touched: a report of a link that saw nothing is the same as none, and
            # 10,000 new links in one report would stall the worker)
        if self.fates is not None:  # (a capture: every link notes its frames' fates)
            for link in staging.new_links.values():
                link.fates = self.fates
        for label in staging.busy:  # (configured while staged; an idle link's report is
            self._touched.add(self._links[label])  # the same, see Link.stats)
        assert staging.classifier is not None
        self._classifier = staging.classifier
        #: How long a frame may wait unread after it arrived (its arrival time known from the
        #: kernel's stamp) and still leave on time: the least delay of any link it may take.
        self.read_slack = staging.least_delay
        self._choose_straight()
        return len(staging.new_links) + len(staging.changed)

    def _new_link(self, label: str, spec: LinkSpec, trace: Trace | None, now: float) -> Link:
        link = Link(spec, self._rng, now, self._budget, trace, self._delays, label)
        return link
