"""Mahimahi traces in virtual time: capacity follows the opportunities exactly."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from engine.core.delay_line import Released
from engine.core.link import Link
from engine.core.packet import Packet
from engine.files.trace_files import MAX_TRACE_BYTES, allowed_traces, check_traces, load_trace
from engine.model.spec import LinkSpec, QueueLimit, Spec, SpecError, parse_spec
from engine.model.trace import OPPORTUNITY_BYTES, TraceClock, TraceError, parse_trace


def trace_file(tmp_path: Path, times: list[int]) -> str:
    path = tmp_path / "link.trace"
    path.write_text("".join(f"{t}\n" for t in times))
    return str(path)


def saturate(lnk: Link, ip_bytes: int, count: int, until: float) -> list[float]:
    """Offer `count` frames at time 0 and return their release times."""
    for i in range(count):
        lnk.offer(Packet(i.to_bytes(4, "big"), 0.0, 1, ip_bytes + 14))
    out: list[Released] = []
    now = 0.0
    while now <= until:
        lnk.advance(now, out)
        now = lnk.next_event() or until + 1
    return [t for t, _, _ in out]


def test_a_full_packet_uses_one_opportunity_each(tmp_path: Path) -> None:
    path = trace_file(tmp_path, [5, 10, 10, 20])  # 4 opportunities every 20 ms
    lnk = Link(LinkSpec(trace=path, queue=QueueLimit(packets=100)), random.Random(1), now=0.0,
               trace=load_trace(path))  # fmt: skip
    releases = saturate(lnk, 1500, 12, until=1.0)
    expected = [c * 0.02 + ms / 1000 for c in range(3) for ms in (5, 10, 10, 20)]
    assert releases == pytest.approx(expected)


def test_small_packets_share_an_opportunity_and_large_ones_span_several(tmp_path: Path) -> None:
    path = trace_file(tmp_path, [1, 2, 3, 4])
    small = Link(LinkSpec(trace=path, queue=QueueLimit(packets=100)), random.Random(1), now=0.0,
                 trace=load_trace(path))  # fmt: skip
    releases = saturate(small, 100, 30, until=1.0)
    per_opportunity = OPPORTUNITY_BYTES // 100  # 15 whole packets of 100 bytes fit in one
    assert releases[:per_opportunity] == pytest.approx([0.001] * per_opportunity)
    clock = TraceClock(parse_trace("1\n2\n3\n4\n"), origin=0.0)
    assert clock.finish(0.0, 3 * 1504 + 14)[0] == pytest.approx(0.003)


def test_unused_opportunities_are_lost(tmp_path: Path) -> None:
    path = trace_file(tmp_path, [10, 20, 30, 40])
    lnk = Link(LinkSpec(trace=path), random.Random(1), now=0.0, trace=load_trace(path))
    lnk.offer(Packet(b"a", 0.025, 1, 114))  # after the 10 and 20 ms opportunities
    out: list[Released] = []
    lnk.advance(1.0, out)
    assert [t for t, _, _ in out] == pytest.approx([0.030])


def test_average_rate_over_many_periods(tmp_path: Path) -> None:
    times = sorted(random.Random(3).randint(1, 100) for _ in range(60))
    times.append(100)
    trace = parse_trace("\n".join(map(str, times)))
    path = trace_file(tmp_path, times)
    lnk = Link(LinkSpec(trace=path, queue=QueueLimit(packets=5000, ms=None)), random.Random(1), 0.0,
               trace=load_trace(path))  # fmt: skip
    releases = saturate(lnk, 1500, 3000, until=4.0)
    delivered_bits = sum(1 for t in releases if t <= 4.0) * 1500 * 8
    # Whole 1500-byte packets use 1500 of each 1504-byte opportunity.
    assert delivered_bits / 4.0 == pytest.approx(trace.average_bps * 1500 / 1504, rel=0.01)


def test_bad_traces_are_named(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="line 2: not a whole number of milliseconds"):
        parse_trace("1\nx\n")
    with pytest.raises(TraceError, match="line 3: 2 goes back in time"):
        parse_trace("1\n5\n2\n")
    with pytest.raises(TraceError, match="empty"):
        parse_trace("\n")
    # Parsing a spec reads no file; applying it does (check_traces), and names the field.
    missing = parse_spec({"egress": {"trace": str(tmp_path / "missing")}})
    with pytest.raises(TraceError, match=r"default_link\.egress\.trace: cannot read trace"):
        check_traces(missing)
    with pytest.raises(SpecError, match=r"default_link\.egress\.trace: a path has no NUL"):
        parse_spec({"egress": {"trace": "a\x00b"}})
    good = trace_file(tmp_path, [1, 2])
    check_traces(parse_spec({"egress": {"trace": good}}))
    assert parse_spec({"egress": {"trace": good}}).default_link.egress.trace == good
    assert Spec().default_link.egress.trace is None


def test_a_trace_error_never_shows_the_file(tmp_path: Path) -> None:
    """A spec can name any path, and errors reach HTTP clients: they name the line, never
    quote it (the bug: `/etc/shadow line 1: 'root:*:...' is not an integer`)."""
    secret = tmp_path / "secret"
    secret.write_text("root:$6$very-secret-hash:19000:0:99999:7:::\n")
    with pytest.raises(TraceError) as caught:
        check_traces(parse_spec({"egress": {"trace": str(secret)}}))
    assert "very-secret" not in str(caught.value) and "19000" not in str(caught.value)
    assert "line 1" in str(caught.value)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "huge"])
def test_only_regular_files_of_bounded_size_are_read(tmp_path: Path, kind: str) -> None:
    """A FIFO would block the reader for ever and /dev/zero would read until memory runs out."""
    path = tmp_path / kind
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        with open(path, "wb") as handle:
            handle.truncate(MAX_TRACE_BYTES + 1)  # sparse: no disk used
    started = time.monotonic()
    with pytest.raises(TraceError, match="cannot read trace"):
        load_trace(str(path))
    assert time.monotonic() - started < 5.0  # at once; before, a FIFO never returned


def test_traces_over_http_only_from_the_trace_directory(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    inside = trace_file(traces, [1, 2])
    outside = trace_file(tmp_path, [1, 3])
    in_force = parse_spec({"ingress": {"trace": outside}})
    wanted = parse_spec({"egress": {"trace": Path(inside).name}})
    with pytest.raises(TraceError, match="--trace-dir"):
        allowed_traces(wanted, in_force, None)
    resolved = allowed_traces(wanted, in_force, str(traces))
    assert resolved.default_link.egress.trace == str(Path(inside).resolve())
    for escape in ("../" + Path(outside).name, "/etc/shadow", str(traces)):
        with pytest.raises(TraceError, match="only files in the trace directory"):
            allowed_traces(parse_spec({"egress": {"trace": escape}}), in_force, str(traces))
    # The operator's own trace, already in force, may be written back as it is.
    same = parse_spec({"ingress": {"trace": outside, "rate": 5}})
    assert allowed_traces(same, in_force, None) is same
