"""Far ends counted as frames leave their links read each flow's fields once, not at every
release: with frames cycling through 10,000 connections (the connection faults' bound, see
bench/fault_cost.py), the second pass reads none again."""

from __future__ import annotations

import pytest

import engine.core.far_ends as far_ends
from engine.core.frames import FlowKey, FrameBytes, flow_key
from tests.frames_helpers import udp_frame

CONNECTIONS = 10_000


def test_ten_thousand_flows_are_read_once_whatever_the_releases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[int] = []

    def counted(frame: FrameBytes, *args: int) -> FlowKey:  # the real reading, counted
        reads.append(1)
        return flow_key(frame, *args)

    monkeypatch.setattr(far_ends, "flow_key", counted)
    template = udp_frame(sport=0, dport=5001, size=20)
    port = len(template) - 20 - 8  # the UDP header's first byte
    frames = [template[:port] + (1024 + i).to_bytes(2, "big") + template[port + 2 :]
              for i in range(CONNECTIONS)]  # fmt: skip
    ends = far_ends.FarEnds(far_is_source=False)
    for _ in range(2):
        for start in range(0, CONNECTIONS, 64):
            ends.count_left(list(frames[start : start + 64]))
    assert len(reads) == CONNECTIONS  # the first pass only
    (talker,) = ends.top()
    assert (talker.port, talker.packets) == (5001, 2 * CONNECTIONS)
