"""The supervisor's change path without interfaces or workers (none started): concurrent
patches are each made on the spec in force, so none is lost, although validation runs
without the lock."""

from __future__ import annotations

import threading

from engine.daemon.config import EngineConfig
from engine.daemon.supervisor import Supervisor
from engine.model.spec import parse_spec
from engine.protocol.messages import Error, PatchSpec, SpecReply

FLOWS = 40


def test_concurrent_patches_are_all_kept() -> None:
    spec = parse_spec(
        {"flows": [{"label": f"f{i}", "flow": {"ip": f"198.18.1.{i}"}} for i in range(FLOWS)]}
    )
    supervisor = Supervisor(EngineConfig("outer", "inner"), spec)
    replies: list[object] = []
    start = threading.Barrier(FLOWS)

    def patch(i: int) -> None:
        start.wait()
        for round_ in range(5):
            reply = supervisor.handle(
                PatchSpec(changes={f"flows.f{i}.egress.latency": 1 + i + round_ * 100})
            )
            replies.append(reply)

    threads = [threading.Thread(target=patch, args=(i,)) for i in range(FLOWS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(isinstance(r, Error) for r in replies)
    assert all(isinstance(r, SpecReply) for r in replies) and len(replies) == FLOWS * 5
    final = {flow.label: flow.link.egress.latency for flow in supervisor.spec.flows}
    assert final == {f"f{i}": 1 + i + 400 for i in range(FLOWS)}
