"""Far ends counted as frames leave their links (`FarEnds.count_left`) read each flow's fields
once, not at every release, and frames of many connections to one far end are summed as one:
with frames cycling through 10,000 connections (the connection faults' bound, see
bench/fault_cost.py) a link costs about what it does with one. What is counted is what
reading every frame on its own counts."""

from __future__ import annotations

import pytest

import engine.core.far_ends as far_ends
from engine.core.frames import NON_IP, VNET_HDR_LEN, FlowKey, FrameBytes, flow_key, wire_shape
from tests.frames_helpers import malformed_frames, tcp_frame, udp_frame

CONNECTIONS = 10_000


def with_ports(template: bytes, count: int, far_port: bool) -> list[bytes]:
    """`count` frames like `template` (UDP, from the shaped side), each with a port of its own:
    the destination's (`far_port`: a far end each, for egress) or the source's (the shaped
    side's: one far end for all)."""
    at = len(template) - 20 - 8 + (2 if far_port else 0)  # the UDP header's port
    return [template[:at] + (1024 + i).to_bytes(2, "big") + template[at + 2 :]
            for i in range(count)]  # fmt: skip


def count_in_releases(ends: far_ends.FarEnds, frames: list[bytes], passes: int = 2) -> None:
    for _ in range(passes):
        for start in range(0, len(frames), 64):
            ends.count_left(list(frames[start : start + 64]))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each time `count_left` reads a frame's flow fields (the real reading, counted)."""
    counted: list[int] = []

    def reading(frame: FrameBytes, *args: int) -> FlowKey:
        counted.append(1)
        return flow_key(frame, *args)

    monkeypatch.setattr(far_ends, "flow_key", reading)
    return counted


def test_ten_thousand_far_ends_are_read_once_whatever_the_releases(reads: list[int]) -> None:
    frames = with_ports(udp_frame(sport=40000, dport=0, size=20), CONNECTIONS, far_port=True)
    ends = far_ends.FarEnds(far_is_source=False)
    count_in_releases(ends, frames)
    assert len(reads) == CONNECTIONS  # the first pass only


def test_ten_thousand_clients_of_one_far_end_are_summed_as_one(reads: list[int]) -> None:
    frames = with_ports(udp_frame(sport=0, dport=5001, size=20), CONNECTIONS, far_port=False)
    ends = far_ends.FarEnds(far_is_source=False)
    count_in_releases(ends, frames)
    assert len(reads) == 1
    (talker,) = ends.top()
    assert (talker.port, talker.packets, talker.bytes) == (5001, 2 * CONNECTIONS,
                                                           2 * CONNECTIONS * 62)  # fmt: skip


@pytest.mark.parametrize("far_is_source", [False, True])
def test_what_is_counted_is_what_each_frame_read_alone_counts(far_is_source: bool) -> None:
    frames = [
        udp_frame(), udp_frame(sport=1), tcp_frame(), tcp_frame(src="198.18.0.7", dport=443),
        udp_frame(src="2001:2::1", dst="2001:2::2"), udp_frame(sport=7, dport=7, size=1),
    ]  # fmt: skip
    frames += [frame[:size] for frame in frames[:3] for size in range(VNET_HDR_LEN, len(frame))]
    frames += [bytes(VNET_HDR_LEN) + f for f in malformed_frames(7, 3000)]
    ends = far_ends.FarEnds(far_is_source)
    for start in range(0, len(frames), 50):
        ends.count_left(list(frames[start : start + 50]))
    alone = far_ends.FarEnds(far_is_source)
    for frame in frames:
        key = flow_key(frame)
        if key is not NON_IP:
            shape = wire_shape(frame)
            alone.count(key, shape.l2_bytes, shape.packets)
    assert sorted(ends.far_ends()) == sorted(alone.far_ends())
    assert len(alone.far_ends()) > 50  # (many far ends among the fuzzed frames)
