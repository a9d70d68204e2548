"""A Mahimahi trace on a real link: UDP through the engine gets the trace's capacity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.lab.harness import EngineProcess, iperf3, received_bits_per_second
from engine.model.spec import Direction
from engine.model.trace import parse_trace

pytestmark = pytest.mark.lab

StartEngine = Callable[..., EngineProcess]
PAYLOAD = 1400  # UDP payload; the IP packet is 1428 bytes


def make_trace(path: Path) -> float:
    """A 100 ms period: a dense first half and a sparse second half, 4.2 Mbit/s on average."""
    times = [1 + i * 50 // 25 for i in range(25)] + [50 + i * 50 // 10 for i in range(10)]
    times.append(100)
    path.write_text("".join(f"{t}\n" for t in sorted(times)))
    return parse_trace(path.read_text()).average_bps


@pytest.mark.parametrize("direction", ["egress", "ingress"])
def test_udp_through_a_trace_gets_its_average_capacity(
    start_engine: StartEngine, tmp_path: Path, direction: Direction
) -> None:
    trace = tmp_path / "cell.trace"
    average = make_trace(trace)
    engine = start_engine({direction: {"trace": str(trace), "queue": {"packets": 200}}})
    assert engine.process.poll() is None
    report = iperf3(
        engine.lab, seconds=4, reverse=direction == "ingress", port=5311,
        extra=("-u", "-b", "10M", "-l", str(PAYLOAD)),
    )  # fmt: skip
    goodput = received_bits_per_second(report)
    # IP bytes flow at the trace's average (bytes may span opportunities); the receiver counts
    # UDP payload only. Tolerance 5 %: the 4 s window cuts the 100 ms period unevenly, and
    # iperf3's own timing is coarse.
    expected = average * PAYLOAD / (PAYLOAD + 28)
    print(f"trace goodput {goodput:.0f} expected {expected:.0f}")
    assert goodput == pytest.approx(expected, rel=0.05), (goodput, expected)
