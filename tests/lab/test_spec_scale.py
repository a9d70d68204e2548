"""Specs at scale: a spec of 10,000 flows put in force by SIGHUP while a UDP probe runs
through the link. The workers go on forwarding with the links in force while the new ones
are built, so no probe datagram is lost and none waits much longer than the others; the
engine's own log says how long the change took to be in force."""

from __future__ import annotations

import json
import signal
import statistics
import time
from collections.abc import Callable

import pytest

from engine.lab.big_specs import in_force_seconds, many_flows
from engine.lab.harness import Background, EngineProcess, probe
from engine.lab.lab import SERVER_IP, Lab
from engine.model.spec import parse_spec
from engine.protocol.client import ControlClient
from tests.wait_helpers import wait_udp_bound, wait_until

pytestmark = pytest.mark.lab

StartEngine = Callable[..., EngineProcess]
#: The worst probe datagram's extra one-way wait over the median, allowed on a loaded 2-core
#: machine (the target, on a quiet one, is 20 ms; before the change it was some 2.7 s).
EXTRA_WAIT_MS = 200.0
#: The change's time to be in force, allowed on a loaded 2-core machine (the target, quiet, is
#: 0.5 s; before the change, under load, the first SIGHUP took 29 s and the second over 30 s).
IN_FORCE_S = 15.0
FLOWS, PPS, SECONDS = 10_000, 1000, 8


@pytest.mark.shared_lab
def test_ten_thousand_flows_by_sighup_stall_nothing(
    start_engine: StartEngine, lab: Lab, background: Background
) -> None:
    default = {"ingress": {"latency": 2}, "egress": {"latency": 2}}
    engine = start_engine({"default_link": default})
    count = PPS * SECONDS
    receiver = background.start(probe(lab, "server", "recv", "6101", "--idle", "2", "--each"))
    wait_udp_bound(lab, "server", 6101)
    sender = background.start(
        probe(lab, "client", "send", SERVER_IP, "6101", "--count", str(count), "--pps", str(PPS))
    )
    time.sleep(2.0)
    for reloads, variant in enumerate((0, 7), start=1):  # all new, then every link changed
        engine.spec_path.write_text(json.dumps(many_flows(FLOWS, default, variant)))
        engine.signal(signal.SIGHUP)

        def logged(count: int = reloads) -> bool:
            return len(in_force_seconds(engine.stderr(), "sighup")) >= count

        wait_until(logged, 30, "the reload in force")
    with engine.client() as client:
        assert len(client.get_spec().flows) == FLOWS
    sender.wait(timeout=60)
    out, _ = receiver.communicate(timeout=60)
    result = json.loads(out)
    delays = list(result["each_ms"].values())
    extra = max(delays) - statistics.median(delays)
    took = in_force_seconds(engine.stderr(), "sighup")
    print(f"in force after {took} s; worst extra wait {extra:.1f} ms")
    assert result["received"] == count and result["duplicates"] == 0
    assert extra <= EXTRA_WAIT_MS, (extra, took)
    assert max(took) <= IN_FORCE_S, took


#: The control client's wait for the reply to a spec of 10,000 flows (a loaded machine).
REPLY_WAIT = 60.0


@pytest.mark.shared_lab
def test_ten_thousand_flows_by_the_control_socket_stall_nothing(
    start_engine: StartEngine, lab: Lab, background: Background
) -> None:
    """The whole spec, then a change of two of its flows (sent to the workers as a diff),
    each answered once both workers have it in force (a reply that is no error says so),
    while every probe datagram goes through at its usual pace."""
    default = {"ingress": {"latency": 2}, "egress": {"latency": 2}}
    engine = start_engine({"default_link": default})
    count = PPS * SECONDS
    receiver = background.start(probe(lab, "server", "recv", "6102", "--idle", "2", "--each"))
    wait_udp_bound(lab, "server", 6102)
    sender = background.start(
        probe(lab, "client", "send", SERVER_IP, "6102", "--count", str(count), "--pps", str(PPS))
    )
    time.sleep(2.0)
    data = many_flows(FLOWS, default)
    changed = dict(data, flows=list(data["flows"]))
    for index in (7, 9000):
        changed["flows"][index] = {**data["flows"][index], "link": {"egress": {"latency": 40}}}
    with ControlClient(engine.control, timeout=REPLY_WAIT) as client:
        assert len(client.set_spec(parse_spec(data)).flows) == FLOWS
        in_force = client.set_spec(parse_spec(changed))
    assert in_force.flows[9000].link.egress.latency == 40
    assert in_force.flows[9001].link == parse_spec(data).flows[9001].link
    sender.wait(timeout=60)
    out, _ = receiver.communicate(timeout=60)
    result = json.loads(out)
    delays = list(result["each_ms"].values())
    extra = max(delays) - statistics.median(delays)
    took = in_force_seconds(engine.stderr(), "client")
    print(f"in force after {took} s; worst extra wait {extra:.1f} ms")
    assert len(took) == 2, took  # each logged by the engine once both workers had it
    assert result["received"] == count and result["duplicates"] == 0
    assert extra <= EXTRA_WAIT_MS, (extra, took)
    assert max(took) <= IN_FORCE_S, took
