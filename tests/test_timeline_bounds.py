"""Timelines under load (issue 34, items 4, 5, 7, 9 and 13): replays read as they go and
fold what is due into a bounded rate of changes, a refused step stops a replay and says
why, recordings stop at a cap and are served in chunks, and `replay`/`plot` read a 1e6-line
file in bounded memory and linear time. Memory is the real processes' RSS."""

from __future__ import annotations

import itertools
import json
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine.lab.harness import EngineProcess
from engine.lab.lab import Lab
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
from engine.web.timeline_routes import MAX_HTTP_REPLAY_STEPS
from tests import ROOT
from tests.netns_thread import in_netns
from tests.tui_helpers import SpecWatcher

StartEngine = Callable[..., EngineProcess]
CLI = [sys.executable, "-m", "engine.cli.main"]
PORT = 8093
MIB = 1024 * 1024


def request(
    lab: Lab, method: str, path: str, body: bytes | None = None, timeout: float = 60.0
) -> tuple[int, bytes]:
    """One HTTP request from inside the box, where the API listens on loopback."""
    import urllib.error
    import urllib.request

    def call() -> tuple[int, bytes]:
        req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    return in_netns(lab.ns("box"), call)


def supervisor(engine: EngineProcess) -> psutil.Process:
    with engine.client() as client:
        return psutil.Process(client.info().supervisor_pid)


def lines(*items: dict[str, Any]) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


class PeakRss:
    """The highest RSS a process reaches while this samples it (every 20 ms)."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def close(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def replay_status(lab: Lab) -> dict[str, Any]:
    status, body = request(lab, "GET", "/timeline/replay")
    assert status == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer


def wait_finished(lab: Lab, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while not (status := replay_status(lab))["finished"]:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    return status


# --- item 4: a long replay body --------------------------------------------------------------

#: The RSS a replay of 50,000 steps may add to the supervisor: its body (0.9 MB) held as it
#: is, a line decoded at a time, and the allocator's slack. Before, each step held a whole
#: resolved spec and more (~10 KB a step: 50,000 took ~500 MB; 200,000 took 2.2 GB).
REPLAY_RSS_BOUND = 48 * MIB


@pytest.mark.lab
def test_a_long_replay_body_is_read_as_it_goes_in_bounded_memory(
    start_engine: StartEngine, lab: Lab
) -> None:
    engine = start_engine({}, extra=("--http", f"127.0.0.1:{PORT}"))
    process = supervisor(engine)
    before = process.memory_info().rss
    body = b'{"at":0,"set":{}}\n' * 50_000
    peak = PeakRss(process)
    try:
        status, answer = request(lab, "POST", "/timeline/replay", body, timeout=120)
        assert status == 200, answer
        assert json.loads(answer)["total"] == 50_000
        time.sleep(1.0)  # it reads its steps meanwhile
        status, _ = request(lab, "POST", "/timeline/replay/stop")
        assert status == 200
        stopped = wait_finished(lab, 10)
        assert stopped["error"] is None
    finally:
        grown = peak.close() - before
    print(f"supervisor RSS {before / MIB:.0f} MB, grew by at most {grown / MIB:.1f} MB")
    assert grown < REPLAY_RSS_BOUND, grown / MIB

    # Past the cap: refused whole, with the bound named, and nothing applied.
    too_long = b'{"at":0,"set":{}}\n' * (MAX_HTTP_REPLAY_STEPS + 1)
    status, answer = request(lab, "POST", "/timeline/replay", too_long, timeout=120)
    assert status == 413, answer
    error = json.loads(answer)["error"]
    assert f"more than {MAX_HTTP_REPLAY_STEPS} steps" in error and "\n" not in error
    assert process.memory_info().rss - before < REPLAY_RSS_BOUND


# --- item 7: changes at a bounded rate, no history -------------------------------------------


@pytest.mark.lab
def test_a_1_ms_loop_at_speed_1000_makes_a_bounded_rate_of_changes_and_holds_nothing(
    start_engine: StartEngine, lab: Lab
) -> None:
    """The bug: ~480 spec changes a second, each fsynced and logged, and the supervisor grew
    61 -> 160 MB in 20 s (every applied step was kept)."""
    engine = start_engine({}, extra=("--http", f"127.0.0.1:{PORT}"))
    process = supervisor(engine)
    loop = lines(
        {"at": 0, "set": {"egress.latency": "1ms"}},
        {"at": 0.0005, "set": {"egress.latency": "2ms"}, "ramp": 0.0005},
    )
    watcher = SpecWatcher(engine.control)
    try:
        status, answer = request(lab, "POST", "/timeline/replay?speed=1000&loop=true", loop)
        assert status == 200, answer
        time.sleep(1.0)  # past the start
        rss_start = process.memory_info().rss
        counted_from = len(watcher.from_source("replay"))
        seconds = 6.0
        time.sleep(seconds)
        changes = len(watcher.from_source("replay")) - counted_from
        rss_grown = process.memory_info().rss - rss_start
        running = replay_status(lab)
        assert not running["finished"] and running["cycle"] > 1000, running
        assert request(lab, "POST", "/timeline/replay/stop")[0] == 200
    finally:
        watcher.close()
    print(f"{changes / seconds:.1f} changes a second, RSS grew {rss_grown / MIB:.1f} MB")
    # At most MAX_CHANGES_PER_SECOND, with one change of slack for where the window falls.
    assert changes <= MAX_CHANGES_PER_SECOND * seconds + 1, changes
    assert changes >= 5 * seconds  # and it does go on changing the link
    assert rss_grown < 4 * MIB, rss_grown / MIB  # before: ~1 MB a second


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


# --- item 9: a refused step ------------------------------------------------------------------

REFUSED = (
    {"at": 0, "set": {"egress.latency": "7ms"}},
    {"at": 0.2, "set": {"egress.trace": "/nonexistent/linkshaper-trace"}},
    {"at": 0.4, "set": {"egress.latency": "9ms"}},
)


@pytest.mark.lab
def test_a_refused_step_stops_the_replay_with_its_reason(
    start_engine: StartEngine, lab: Lab, tmp_path: Path
) -> None:
    engine = start_engine({}, extra=("--http", f"127.0.0.1:{PORT}"))
    status, answer = request(lab, "POST", "/timeline/replay", lines(*REFUSED))
    assert status == 200, answer  # each step is fine on its own: the engine refuses one
    stopped = wait_finished(lab, 10)
    error = stopped["error"]
    assert error is not None and error.startswith("step 2 (at 0.2 s): "), stopped
    assert "trace" in error and "\n" not in error
    assert stopped["position"] == 1
    with engine.client() as client:
        egress = client.get_spec().default_link.egress
    assert egress.latency == 7 and egress.trace is None  # step 3 never came
    time.sleep(0.5)
    assert engine.stderr().count("replay stopped: step 2") == 1, engine.stderr()

    # The command line: exit 1 with the same one-line reason.
    timeline = tmp_path / "refused.jsonl"
    timeline.write_bytes(lines(*REFUSED))
    done = subprocess.run(
        [*CLI, "replay", str(timeline), "--control", engine.control],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("linkshaper: step 2 (at 0.2 s): ") and "trace" in last, done.stderr


@pytest.mark.lab
def test_a_refused_first_step_is_the_answer_of_the_post(
    start_engine: StartEngine, lab: Lab
) -> None:
    """A first step the engine refuses, due at once: the POST itself answers 422 with the
    reason (before: 200, and the refusal only in the status later); the status says the same
    and nothing changed."""
    engine = start_engine({}, extra=("--http", f"127.0.0.1:{PORT}"))
    refused_at_once = ({"at": 0, "set": {"egress.trace": "/nonexistent/linkshaper-trace"}},
                       *REFUSED[2:])  # fmt: skip
    status, answer = request(lab, "POST", "/timeline/replay", lines(*refused_at_once))
    assert status == 422, answer
    error = json.loads(answer)["error"]
    assert error.startswith("step 1 (at 0") and "trace" in error, error
    status, answer = request(lab, "GET", "/timeline/replay")
    assert status == 200 and json.loads(answer)["error"] == error
    with engine.client() as client:
        assert client.get_spec().default_link.egress.trace is None


@pytest.mark.lab
def test_a_second_recording_does_not_throw_the_first_away(
    start_engine: StartEngine, lab: Lab
) -> None:
    """POST /timeline/record while one runs: 409 saying how to end it (before: 200, and the
    recording so far was thrown away unread)."""
    start_engine({}, extra=("--http", f"127.0.0.1:{PORT}"))
    assert request(lab, "POST", "/timeline/record")[0] == 200
    patch = json.dumps({"egress.latency": "11ms"}).encode()
    assert request(lab, "PATCH", "/qos", patch)[0] == 200
    status, answer = request(lab, "POST", "/timeline/record")
    assert status == 409 and b"DELETE /timeline/record" in answer, answer
    status, recording = request(lab, "DELETE", "/timeline/record")
    assert status == 200
    recorded = [json.loads(line) for line in recording.splitlines() if line.startswith(b"{")]
    assert any(
        item.get("spec", {}).get("default_link", {}).get("egress", {}).get("latency") == 11
        for item in recorded
    ), recording  # the change made before the second POST is still there


# --- item 5: recordings ----------------------------------------------------------------------


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


def _fd_paths(process: psutil.Process, suffix: str) -> list[Path]:
    return [Path(f.path) for f in process.open_files() if f.path.endswith(suffix)]


#: What 8 readers of a ~24 MB recording at once may add to the supervisor: a chunk each
#: and the server's buffers. Read whole, each held it twice (text and body): ~400 MB.
READERS_RSS_BOUND = 64 * MIB


@pytest.mark.lab
def test_a_recording_is_private_and_served_in_chunks(start_engine: StartEngine, lab: Lab) -> None:
    flows = [
        {"label": f"f{i}", "flow": {"port_min": 1000 + i, "port_max": 1000 + i},
         "link": {"egress": {"latency": 1}, "ingress": {}}}
        for i in range(300)
    ]  # fmt: skip
    engine = start_engine({"flows": flows}, extra=("--http", f"127.0.0.1:{PORT}"))
    process = supervisor(engine)
    assert request(lab, "POST", "/timeline/record")[0] == 200
    recording = _fd_paths(process, ".jsonl")
    assert len(recording) == 1
    folder = recording[0].parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == 0
    assert stat.S_IMODE(recording[0].stat().st_mode) == 0o600

    # Each change writes the whole spec (~300 flows, ~0.5 MB a line) to the recording.
    deadline = time.monotonic() + 60
    while recording[0].stat().st_size < 24 * MIB:
        assert time.monotonic() < deadline, recording[0].stat().st_size
        latency = f"{1 + int(time.monotonic() * 1000) % 50}ms"
        status, _ = request(lab, "PATCH", "/qos", json.dumps({"egress.latency": latency}).encode())
        assert status == 200
    size = recording[0].stat().st_size

    before = process.memory_info().rss
    peak = PeakRss(process)
    results: list[tuple[int, int]] = []

    def read() -> None:
        status, body = request(lab, "GET", "/timeline/record", timeout=120)
        results.append((status, len(body)))

    readers = [threading.Thread(target=read) for _ in range(8)]
    try:
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(150)
    finally:
        grown = peak.close() - before
    print(f"recording {size / MIB:.0f} MB; 8 readers grew the supervisor {grown / MIB:.1f} MB")
    assert [status for status, _ in results] == [200] * 8
    assert all(length >= size for _, length in results)
    assert grown < READERS_RSS_BOUND, grown / MIB

    status, body = request(lab, "DELETE", "/timeline/record", timeout=120)
    assert status == 200 and len(body) >= size
    assert json.loads(body.splitlines()[-1])["spec"]["flows"][0]["label"] == "f0"
    assert not folder.exists()  # gone with the recording
    assert not _fd_paths(process, ".jsonl")


# --- item 13: `replay` and `plot` on a 1e6-line file -----------------------------------------

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
