"""Specs at scale, in virtual time: a new spec rebuilds only the links whose spec changed
(the others keep their queue, counters and state), a plan that came through a pipe (pickled,
as a worker gets it) is told unchanged by identity, and a big plan is built in slices while
the links in force go on taking frames, then put in force in one step."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from engine.core.classifier import DEFAULT_LABEL, Classifier
from engine.core.frames import flow_key
from engine.core.link import Link
from engine.core.plan import DirectionPlan, Interner, PlanDiff, diff_plans, plan_of, plans_of
from engine.daemon.plans import Sent, pack_plans, unpack_plan
from engine.lab.big_specs import many_flows
from engine.model.spec import Spec, parse_spec
from tests.frames_helpers import CLIENT, udp_frame
from tests.pipeline_helpers import ReceivingPipeline

DEFAULT: dict[str, Any] = {"ingress": {}, "egress": {"latency": 1}}


def three_flows(b_latency: float) -> dict[str, Any]:
    links = {"a": {"rate": "1mbit"}, "b": {"latency": b_latency}, "c": {"latency": 3}}
    flows = [
        {"label": label, "flow": {"ip": f"198.19.0.{i + 1}"}, "link": {"egress": link}}
        for i, (label, link) in enumerate(links.items())
    ]
    return {"default_link": DEFAULT, "flows": flows}


def through_a_pipe(spec: Spec) -> Any:
    """The plan of `spec`'s egress as a worker gets it: pickled by the supervisor."""
    return pickle.loads(pickle.dumps(plan_of(spec, "egress", Interner())))


def test_only_the_changed_link_is_rebuilt_and_the_others_keep_their_queue() -> None:
    p = ReceivingPipeline(parse_spec(three_flows(2)), "egress", 0.0, seed=1)
    for _ in range(5):  # 1 Mbit/s: the second and later wait in flow a's queue
        p.receive(udp_frame(dst="198.19.0.1", size=1000), 0.0)
    queued = p.stats(0.0).flows["a"].queue_packets
    assert queued >= 3
    assert p.apply(through_a_pipe(parse_spec(three_flows(2))), 0.001) == 0  # the same spec
    assert p.apply(through_a_pipe(parse_spec(three_flows(9))), 0.002) == 1  # only b changed
    after = p.stats(0.002).flows["a"]
    assert after.queue_packets == queued and after.packets_in == 5
    released = p.release(1.0)
    assert len(released) == 5  # all of flow a's frames left: nothing was lost to the reload
    assert p.stats(1.0).flows["a"].packets_out == 5


def test_a_big_plan_is_built_in_slices_while_the_old_links_forward() -> None:
    p = ReceivingPipeline(parse_spec({"default_link": DEFAULT}), "egress", 0.0, seed=1)
    plan = plans_of(parse_spec(many_flows(2000, DEFAULT)))["egress"]
    p.stage(plan, 0.0)
    steps = 0
    while p.building:
        assert p.build(0.0, 32) in (-1, 2000)  # 2000 links made, none re-configured
        steps += 1
        if p.building:  # the plan is not in force yet: flow f5's frames take the default
            p.receive(udp_frame(dst="198.19.0.5", dport=1029), 0.0)
            assert "f5" not in p.stats(0.0).flows
    assert steps > 2000 // 32  # a slice makes at most 32 links or rules
    p.receive(udp_frame(dst="198.19.0.5", dport=1029), 0.0)
    assert p.stats(0.0).flows["f5"].packets_in == 1


def test_a_plan_changing_every_flow_reconfigures_each_once() -> None:
    p = ReceivingPipeline(parse_spec(many_flows(500, DEFAULT)), "egress", 0.0, seed=1)
    assert p.apply(through_a_pipe(parse_spec(many_flows(500, DEFAULT, 3))), 1.0) == 500
    assert p.apply(through_a_pipe(parse_spec(many_flows(500, DEFAULT, 3))), 2.0) == 0


def test_the_classifier_finds_each_of_a_thousand_flows_by_address_and_port() -> None:
    spec = parse_spec(many_flows(1000, DEFAULT))
    classifier = Classifier.of_flows(spec.flows, "egress")
    assert classifier.rules == plan_of(spec, "egress").rules
    for i in (0, 1, 255, 256, 999):
        address = f"198.19.{i // 256}.{i % 256}"
        assert classifier.classify(flow_key(udp_frame(dst=address, dport=1024 + i))) == f"f{i}"
        other_port = flow_key(udp_frame(dst=address, dport=80))
        assert classifier.classify(other_port) == DEFAULT_LABEL
    assert classifier.classify(flow_key(udp_frame(dst=CLIENT))) == DEFAULT_LABEL


def with_latency(spec: dict[str, Any], changes: dict[int, float]) -> dict[str, Any]:
    """`spec` with the egress latency of the flows at `changes`' indices set."""
    flows = [
        {**flow, "link": {**flow["link"], "egress": {"latency": changes[i]}}}
        if i in changes
        else flow
        for i, flow in enumerate(spec["flows"])
    ]
    return {**spec, "flows": flows}


def test_a_diff_of_the_same_flows_carries_only_the_changed_links() -> None:
    intern = Interner()
    old_data = many_flows(1000, DEFAULT)
    before = plan_of(parse_spec(old_data), "egress", intern)
    after = plan_of(parse_spec(with_latency(old_data, {3: 900, 500: 901, 999: 902})), "egress",
                    intern)  # fmt: skip
    diff = diff_plans(before, after)
    assert diff is not None and diff.default is None
    assert [index for index, _link in diff.links] == [3, 500, 999]
    assert [link.latency for _index, link in diff.links] == [900, 901, 902]
    made = diff.applied_to(before)
    assert made == after
    assert all(a is b for a, b in zip(made.links, after.links, strict=True))  # (interned)
    assert diff_plans(after, after) == PlanDiff(None, (), 1000)


def test_a_diff_is_no_diff_when_the_flows_themselves_change() -> None:
    intern = Interner()
    data = many_flows(100, DEFAULT)
    before = plan_of(parse_spec(data), "egress", intern)
    fewer = plan_of(parse_spec({**data, "flows": data["flows"][:99]}), "egress", intern)
    moved = plan_of(parse_spec({**data, "flows": data["flows"][::-1]}), "egress", intern)
    assert diff_plans(before, fewer) is None and diff_plans(before, moved) is None
    with pytest.raises(ValueError, match="a diff of 100 flows for a plan of 99"):
        PlanDiff(None, (), 100).applied_to(fewer)


def test_a_worker_is_sent_the_change_of_two_flows_of_ten_thousand_as_two() -> None:
    intern, sent = Interner(), Sent()
    data = many_flows(10_000, DEFAULT)
    whole = pack_plans(parse_spec(data), 1, {}, intern, sent)["egress"]
    p = ReceivingPipeline(parse_spec({"default_link": DEFAULT}), "egress", 0.0, seed=1)
    first = unpack_plan(whole)
    assert first is not None and isinstance(first.plan, DirectionPlan)
    p.apply(first.plan, 0.0)
    changed = pack_plans(parse_spec(with_latency(data, {7: 77, 9000: 99})), 2, {}, intern, sent)
    message = unpack_plan(changed["egress"])
    assert message is not None and isinstance(message.plan, PlanDiff) and message.base == 1
    assert len(changed["egress"]) * 100 < len(whole)  # (some 400 kB whole)
    assert p.apply(message.plan.applied_to(p.plan), 1.0) == 2  # only those two rebuilt


def test_the_swap_of_a_built_plan_reads_no_link(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the swap needs of the links (which hold frames, their least delay, which go) is
    found in the build's slices: the one step forwarding waits for touches none of them."""
    p = ReceivingPipeline(parse_spec(many_flows(2000, DEFAULT)), "egress", 0.0, seed=1)
    p.receive(udp_frame(dst="198.19.0.5", dport=1029), 0.0)  # flow f5 holds a frame
    reads: list[str] = []
    idle = vars(Link)["idle"]

    def counted(link: Link) -> bool:
        reads.append(link.label)
        return bool(idle.fget(link))

    monkeypatch.setattr(Link, "idle", property(counted))
    fewer = many_flows(1500, DEFAULT, 3)  # every link changed, 500 flows gone
    p.stage(plans_of(parse_spec(fewer))["egress"], 0.1)
    while p.build(0.1, 1) < 0:
        reads.clear()
    assert reads == []  # (the whole plan's 1,500 before)
    assert p.read_slack == 0.001  # the default's 1 ms: f0's was 3 ms; none is less
    flows = p.stats(0.2).flows
    assert "f1499" in flows and "f1500" not in flows and flows["f5"].packets_in == 1
    assert len(p.release(1.0)) == 1  # the frame f5 held left: nothing lost to the swap
