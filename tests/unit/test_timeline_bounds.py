"""Timelines under load without the lab: steps due together, ramps, the recording cap,
replay/check/plot over a million lines, a long series. The lab ones are in
tests/lab/test_timeline_bounds.py."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.model.spec import Spec
from engine.timelines.parsing import parse_timeline
from engine.timelines.plot import MAX_POINTS, Series
from engine.timelines.reading import read_timeline, timeline_from_bytes
from engine.timelines.recorder import FULL_MARKER, MAX_RECORDING_BYTES, TimelineRecorder
from engine.timelines.replay import (
    MAX_CHANGES_PER_SECOND,
    MIN_CHANGE_GAP,
    ReplayRunner,
    plan,
)
from tests import ROOT
from tests.lab.test_timeline_bounds import CLI, MIB, lines


def test_steps_due_together_apply_their_net_effect_once() -> None:
    """Fifty patches (paths set twice under two names, a whole spec between, a queue set
    whole and then one of its fields) due within 50 ms at speed 1000: far fewer changes,
    and the last is exactly the spec applying every step in turn gives."""
    items: list[dict[str, Any]] = [
        {"at": 0.001 * i, "set": {"egress.latency": f"{i}ms", "ingress.rate": f"{i + 1}mbit"}}
        for i in range(50)
    ]
    items.insert(10, {"at": 0.0095, "spec": {"egress": {"loss": 0.1}}})
    items.append({"at": 0.05, "set": {"default_link.egress.latency": 3,
                                      "egress.queue": {"discipline": "codel"}}})  # fmt: skip
    items.append({"at": 0.05, "set": {"egress.queue.packets": 7, "egress.latency": "4ms"}})
    text = lines(*items)
    base = Spec.model_validate({"egress": {"jitter": 2}})
    expected = parse_timeline(text.decode().splitlines()).resolve(base)[-1].spec

    applied: list[tuple[float, Spec]] = []
    timeline = timeline_from_bytes(text)
    timeline.check()
    runner = ReplayRunner(
        timeline, lambda spec: applied.append((time.monotonic(), spec)), base, speed=1000
    )
    runner.run()
    assert applied[-1][1] == expected
    assert expected.default_link.egress.queue.packets == 7  # the case is what it says
    assert len(applied) <= 3 and runner.status().position == len(items)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(applied)]
    assert all(gap >= MIN_CHANGE_GAP * 0.99 for gap in gaps), gaps


def test_a_replay_with_ramps_ends_where_the_plan_does() -> None:
    """A ramp cut short by a ramping step, a patch during a ramp, and a ramp that runs to its
    end, at speed 10: the runner's changes follow the ramps and end on the plan's last spec."""
    text = lines(
        {"at": 0, "spec": {"egress": {"rate": "10mbit", "latency": 10}}},
        {"at": 0.2, "spec": {"egress": {"rate": "2mbit", "latency": 50}}, "ramp": 10},
        {"at": 1, "set": {"egress.loss": "1%"}, "ramp": 2},
        {"at": 2, "set": {"ingress.latency": "5ms"}},
        {"at": 3, "set": {"egress.rate": "4mbit"}, "ramp": 5},
    )
    base = Spec()
    timeline = parse_timeline(text.decode().splitlines())
    planned = list(plan(timeline.resolve(base), base))
    applied: list[Spec] = []
    ReplayRunner(timeline, applied.append, base, speed=10).run()
    assert applied[-1] == planned[-1].spec
    assert applied[-1].default_link.egress.rate == 4_000_000
    # 0.8 s at speed 10: at most ~25 changes a second where the plan has 200 a second.
    assert 10 <= len(applied) <= MAX_CHANGES_PER_SECOND + 2 < len(planned)
    falling = [s.default_link.egress.rate for s in applied if s.default_link.ingress.latency == 0]
    assert falling[1:] == sorted(falling[1:], reverse=True)  # the first ramps go down


def test_a_recording_stops_at_its_cap_with_a_last_line_that_says_why(tmp_path: Path) -> None:
    path = tmp_path / "capped.jsonl"
    cap = 64 * 1024
    recorder = TimelineRecorder(path, max_bytes=cap)
    spec = Spec.model_validate({"egress": {"latency": 5}})
    for _ in range(200):  # ~1.5 KB each: well past the cap
        recorder.spec(spec, "test")
    assert recorder.full is not None
    recorder.close()
    data = path.read_bytes()
    assert len(data) <= cap and recorder.written == len(data)
    assert data.decode().splitlines()[-1].startswith(FULL_MARKER)
    assert len(read_timeline(path).steps) > 10  # still a timeline every reader takes
    default = TimelineRecorder(tmp_path / "default.jsonl")
    default.close()
    assert default.max_bytes == MAX_RECORDING_BYTES


#: What `linkshaper replay --check` and `plot` may take reading a 1e6-line file (the issue's
#: figure): the interpreter and its libraries take ~60 MB of it.
CLI_RSS_BOUND_MB = 200


#: How long each may take: ~15-30 s on a busy 2-core machine. A bound against quadratic
#: or unbounded reading (before, neither finished in 120 s), not a timing test.
CLI_SECONDS_BOUND = 90.0


#: Address space the command may have at all, so that a regression fails instead of
#: taking the machine's memory (it took 2.7 GB).
CLI_ADDRESS_SPACE = 2048 * MIB


MEASURED = """
import resource, subprocess, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
start = time.monotonic()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
took = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(done.returncode, round(peak), round(took, 1))
"""


def _measured(args: list[str]) -> tuple[int, float, float]:
    """Exit code, peak RSS (MB) and seconds of a command, run alone under a wrapper."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURED.format(limit=CLI_ADDRESS_SPACE), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=CLI_SECONDS_BOUND * 2,
    )  # fmt: skip
    code, peak, took = done.stdout.split()
    return int(code), float(peak), float(took)


@pytest.fixture
def million(tmp_path: Path) -> Iterator[Path]:
    """A 1e6-line timeline (~45 MB): patches every millisecond, and every 100th line a
    stats sample, so that there is something to plot."""
    path = tmp_path / "million.jsonl"
    with path.open("w") as out:
        for i in range(1_000_000):
            at = round(i * 0.001, 3)
            if i % 100 == 99:
                sample = {"direction": "egress", "at": at, "pid": 1,
                          "total": {"bytes_out": i * 1000}}  # fmt: skip
                out.write(json.dumps({"at": at, "stats": sample}, separators=(",", ":")) + "\n")
            else:
                change = {"egress.latency": f"{i % 40}ms"}
                out.write(json.dumps({"at": at, "set": change}, separators=(",", ":")) + "\n")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def test_replay_check_and_plot_read_a_million_lines_in_bounded_memory(
    million: Path, tmp_path: Path
) -> None:
    assert 30 * MIB < million.stat().st_size < 60 * MIB
    code, peak, took = _measured([*CLI, "replay", "--check", str(million)])
    print(f"replay --check: {peak:.0f} MB, {took:.1f} s")
    assert code == 0 and peak <= CLI_RSS_BOUND_MB and took < CLI_SECONDS_BOUND

    chart = tmp_path / "chart.txt"
    code, peak, took = _measured([*CLI, "plot", str(million), "--quiet", "--out", str(chart)])
    print(f"plot: {peak:.0f} MB, {took:.1f} s")
    assert code == 0 and peak <= CLI_RSS_BOUND_MB and took < CLI_SECONDS_BOUND
    assert "Upload (egress)" in chart.read_text()


def test_a_long_series_keeps_at_most_max_points_and_its_mean() -> None:
    series = Series()
    count = MAX_POINTS * 10 + 7
    for i in range(count):
        series.add(float(i), float(i % 10))
    series.finish()
    assert len(series.x) <= MAX_POINTS and series.x == sorted(series.x)
    mean = sum(series.y) / len(series.y)
    assert abs(mean - 4.5) < 0.01  # the shape and the area survive the thinning


def test_a_loop_lasts_the_whole_recording_so_its_last_step_holds() -> None:
    """A recording whose last step is at 6.45 s and whose stats go on to 12.75 s (as `r`
    writes them) loops every 12.75 s: the last step holds 6.3 s per cycle, as recorded, not
    the 10 ms it held when a cycle ended at the last step. Speed 20 (a cycle 0.64 s); a change
    is never early, and is allowed 3 s of timeline time (150 ms) late on a busy machine."""
    text = lines(
        {"linkshaper_timeline": 1},
        {"at": 0, "set": {"egress.latency": "50ms"}},
        {"at": 6.45, "set": {"egress.latency": "5ms"}},
        *(
            {"at": at, "stats": {"direction": "egress", "at": at}}
            for at in (round(0.25 * i + 0.5, 2) for i in range(50))
        ),
    )
    assert json.loads(text.splitlines()[-1])["at"] == 12.75
    timeline = timeline_from_bytes(text)
    assert timeline.check().duration == 12.75
    assert parse_timeline(text.decode().splitlines()).duration == 12.75
    seen: list[tuple[float, float]] = []  # (timeline time, egress latency in ms)

    def apply(spec: Spec) -> None:
        seen.append(((time.monotonic() - runner.origin) * 20, spec.default_link.egress.latency))
        if len(seen) == 5:
            runner.stop()

    runner = ReplayRunner(timeline, apply, Spec(), speed=20, loop=True)
    runner.run()
    due = [(0.0, 50), (6.45, 5), (12.75, 50), (19.2, 5), (25.5, 50)]
    assert [latency for _, latency in seen] == [latency for _, latency in due], seen
    for (at, _), (when, _) in zip(due, seen, strict=True):
        assert at - 0.01 <= when <= at + 3, (due, seen)
