"""`--json` of `linkshaper get`, `stats` and `fates`, and `stats --once`'s rates, against a real
engine in the lab's box with real TCP and UDP through it: each line parses as one JSON object,
with the field names of the HTTP API's answer for the same engine, and the figures in it
measured against the configured link. Also the engine's CPU and memory on `/metrics`.

Tolerances are stated where they are used. A 10 Mbit/s egress link carries the client's TCP
(egress is what the client sends): its full frames weigh 1514 + 24 bytes on the wire, of which
the stats count the 1514, so the bytes out a second are the rate times FULL_FRAME_SHARE."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine.lab.harness import Background, EngineProcess, probe
from engine.lab.lab import SERVER_IP, Lab
from engine.model.spec import FRAMING_OVERHEAD
from engine.model.stats import DirectionStats, EngineStats
from engine.model.units import parse_rate
from tests import ROOT
from tests.netns_thread import in_netns
from tests.wait_helpers import wait_udp_bound, wait_until

pytestmark = [pytest.mark.lab, pytest.mark.shared_lab]

StartEngine = Callable[..., EngineProcess]
PORT = 8094
IPERF_PORT = 5211
RATE = 10_000_000
FULL_FRAME_SHARE = 1514 / (1514 + FRAMING_OVERHEAD)
CLI = [sys.executable, "-m", "engine.cli.main"]


def cli(engine: EngineProcess, *args: str, timeout: float = 30) -> str:
    """One `linkshaper` command against the engine; its stdout (it must succeed)."""
    done = subprocess.run([*CLI, *args, "--control", engine.control], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def http_body(lab: Lab, path: str) -> bytes:
    """A GET from inside the box, where the API listens on loopback: the body as sent."""

    def get() -> bytes:
        url = f"http://127.0.0.1:{PORT}{path}"
        with urllib.request.urlopen(url, timeout=20) as response:
            body: bytes = response.read()
            return body

    return in_netns(lab.ns("box"), get)


def shape(value: Any) -> Any:
    """The field names of a JSON value, nested: what two answers must share to be read alike
    (a list by its first element's, a map of links by its labels')."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__.replace("int", "float")  # 0 and 0.5 are both numbers


def tcp_listening(lab: Lab, port: int) -> bool:
    listed = lab.run("server", "ss", "-H", "-n", "-l", "-t", check=False).stdout
    return any(line.split()[3].endswith(f":{port}") for line in listed.splitlines() if line.strip())


@contextmanager
def tcp_load(lab: Lab, engine: EngineProcess, seconds: int) -> Iterator[None]:
    """The client's iperf3 TCP to the server for `seconds`, running while the block does; the
    block starts once the egress queue holds packets (the link is the bottleneck), and ends
    with iperf3's run checked (on a busy machine a fixed sleep let the block run before any
    traffic did, or after iperf3 had failed to connect)."""
    procs = Background()
    try:
        procs.start(lab.in_ns("server", "iperf3", "-s", "-1", "-p", str(IPERF_PORT)))
        wait_until(lambda: tcp_listening(lab, IPERF_PORT), 15, "the iperf3 server", 0.05)
        client = procs.start(lab.in_ns("client", "iperf3", "-c", SERVER_IP, "-p",
                                       str(IPERF_PORT), "-t", str(seconds), "-J"))  # fmt: skip

        def queued() -> bool:
            with engine.client() as control:
                egress = control.stats().egress
            return egress is not None and egress.total.queue_packets > 0

        wait_until(queued, 15, "TCP filling the egress queue", 0.1)
        yield
        out, err = client.communicate(timeout=seconds + 30)
        assert client.returncode == 0, err
        assert json.loads(out)["end"]["sum_received"]["bytes"] > 0
    finally:
        procs.close()


@pytest.fixture
def engine(start_engine: StartEngine) -> EngineProcess:
    return start_engine({"egress": {"rate": RATE}, "ingress": {}},
                        extra=("--http", f"127.0.0.1:{PORT}"))  # fmt: skip


def test_get_json_is_the_http_apis_answer_byte_for_byte(engine: EngineProcess, lab: Lab) -> None:
    cli(engine, "set", "egress.latency=20ms", "ingress.queue.packets=50")
    line = cli(engine, "get", "--json")
    assert line.count("\n") == 1
    assert line.rstrip("\n").encode() == http_body(lab, "/qos")
    got = json.loads(line)
    assert got["default_link"]["egress"]["latency"] == 20
    assert got["default_link"]["ingress"]["queue"]["packets"] == 50
    # Plain `get` is as it was (the whole model, indented): scripts read it.
    whole = json.loads(cli(engine, "get"))
    assert whole["default_link"]["egress"]["rate"] == RATE and "jitter_distribution" in whole[
        "default_link"]["egress"]  # fmt: skip


def test_stats_json_lines_have_the_http_names_and_the_measured_rate(
    engine: EngineProcess, lab: Lab
) -> None:
    """Live `stats --json` against `/stats/stream` (a stats report and a spec change each),
    `--once --json` against `GET /stats`, `--interval 1` thinning the lines, and the egress
    rate in the lines against the configured one: within 5 % over about 5 s."""
    live_command = [*CLI, "stats", "--json", "--seconds", "5", "--control", engine.control]
    with tcp_load(lab, engine, seconds=10), ThreadPoolExecutor(1) as pool:
        live = subprocess.Popen(live_command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        thinned = subprocess.Popen([*live_command, "--interval", "1"], stdout=subprocess.PIPE,
                                   text=True, cwd=ROOT)  # fmt: skip
        assert live.stdout is not None
        head = live.stdout.readline()  # it watches now, and so does the stream once it reads
        streaming = pool.submit(http_body, lab, "/stats/stream?seconds=4")
        wait_until(lambda: "linkshaper_http_streams 1" in http_body(lab, "/metrics").decode(),
                   10, "the stream's reader")  # fmt: skip
        cli(engine, "set", "ingress.latency=1ms")
        streamed = streaming.result(timeout=60).decode()
        once = json.loads(cli(engine, "stats", "--once", "--json"))
        snapshot = json.loads(http_body(lab, "/stats"))
        out = head + live.communicate(timeout=30)[0]
        few, _ = thinned.communicate(timeout=30)
    assert live.returncode == 0 == thinned.returncode
    lines = [json.loads(line) for line in out.splitlines()]
    events = [json.loads(line[len("data: ") :]) for line in streamed.splitlines()
              if line.startswith("data: ")]  # fmt: skip
    sent = {m.get("stats", {}).get("direction", m["type"]): shape(m) for m in events}
    assert {"ingress", "egress", "spec_changed"} <= set(sent), set(sent)
    for line in lines:
        assert shape(line) == sent[line.get("stats", {}).get("direction", line["type"])]
    reports = [m for m in lines if m["type"] == "stats"]
    assert len(reports) >= 20 and len(reports) + 1 == len(lines)  # ten a second a direction
    assert all(set(m["stats"]) == set(DirectionStats.model_fields) for m in reports)
    assert shape(once) == shape(snapshot) and set(once) == set(EngineStats.model_fields)
    egress = [m["stats"] for m in reports if m["stats"]["direction"] == "egress"]
    first, last = egress[0], egress[-1]
    assert first["pid"] == last["pid"] and last["at"] - first["at"] >= 2.0
    bits = (last["total"]["bytes_out"] - first["total"]["bytes_out"]) * 8
    measured = bits / (last["at"] - first["at"])
    expected = RATE * FULL_FRAME_SHARE
    assert abs(measured - expected) <= 0.05 * expected, (measured, expected)
    spaced = [json.loads(line)["stats"]["at"] for line in few.splitlines()
              if '"direction":"egress"' in line]  # fmt: skip
    assert 3 <= len(spaced) <= 6 and all(b - a >= 1.0 for a, b in itertools.pairwise(spaced))


def test_stats_once_prints_the_rates_over_an_interval(engine: EngineProcess, lab: Lab) -> None:
    """It printed 0 bit/s: one snapshot has counters, not rates. Now two, --interval apart:
    the egress line's `out` within 8 % of the rate (one second of TCP, three digits shown)."""
    # 10 s of TCP: the command takes seconds to start on a busy machine (at load 10, 5 s of
    # TCP had ended before its second snapshot).
    with tcp_load(lab, engine, seconds=10):
        text = cli(engine, "stats", "--once", "--interval", "1")
    egress = next(line for line in text.splitlines() if line.startswith("egress"))
    shown = re.search(r" out +([0-9.]+) (\w+)/s ", egress)  # "out      9.84 Mbit/s"
    assert shown is not None, egress
    measured = parse_rate(shown[1] + shown[2])
    expected = RATE * FULL_FRAME_SHARE
    assert abs(measured - expected) <= 0.08 * expected, egress


def test_stats_for_less_than_a_lines_interval_still_prints_each_direction(
    engine: EngineProcess,
) -> None:
    """`linkshaper stats --seconds 1` printed nothing and exited 0: a line's rate needs two
    reports a second apart, and the deadline came first (the new-user pass)."""
    text = cli(engine, "stats", "--seconds", "1")
    starts = {line.split()[0] for line in text.splitlines() if line.strip()}
    assert {"ingress", "egress"} <= starts, text


def test_live_stats_text_never_prints_a_rate_it_has_not_measured(
    engine: EngineProcess, lab: Lab
) -> None:
    """The live text's first line per direction read `0 bit/s` under load (one report has
    counters, no rate): it waits for the second. Every egress line under TCP shows the rate,
    within 8 %."""
    with tcp_load(lab, engine, seconds=10):  # the command's start-up inside the load
        text = cli(engine, "stats", "--seconds", "2.5")
    egress = [line for line in text.splitlines() if line.startswith("egress")]
    assert egress, text
    expected = RATE * FULL_FRAME_SHARE
    for line in egress:
        shown = re.search(r" out +([0-9.]+) (\w+)/s ", line)
        assert shown is not None, line
        assert abs(parse_rate(shown[1] + shown[2]) - expected) <= 0.08 * expected, line


def test_metrics_give_the_engines_cpu_and_memory(engine: EngineProcess, lab: Lab) -> None:
    """Per process of the engine (supervisor, a worker per direction), what /proc says of that
    process as the page was made: resident memory within 10 %, CPU time not ahead of it and
    at most 0.5 s behind; the egress worker's CPU grows while it forwards."""

    def figures() -> dict[tuple[str, str], float]:
        page = http_body(lab, "/metrics").decode()
        found = {}
        for line in page.splitlines():
            if line.startswith("linkshaper_process_"):
                name, value = line.split(" ")
                metric, _, role = name.partition('{process="')
                found[(metric, role.removesuffix('"}'))] = float(value)
        return found

    info = json.loads(http_body(lab, "/info"))
    pids = {"supervisor": info["supervisor_pid"], **info["worker_pids"]}
    before = figures()
    with tcp_load(lab, engine, seconds=3):
        pass
    after = figures()
    for role, pid in pids.items():
        process = psutil.Process(pid)
        times, rss = process.cpu_times(), process.memory_info().rss
        cpu = after[("linkshaper_process_cpu_seconds_total", role)]
        assert times.user + times.system - 0.5 <= cpu <= times.user + times.system + 0.01, role
        memory = after[("linkshaper_process_resident_memory_bytes", role)]
        assert abs(memory - rss) <= 0.1 * rss, (role, memory, rss)
    assert set(pids) == {"supervisor", "ingress", "egress"}
    key = ("linkshaper_process_cpu_seconds_total", "egress")
    assert after[key] > before[key]


def test_fates_json_sums_up_a_real_capture(
    start_engine: StartEngine, lab: Lab, background: Background, tmp_path: Path
) -> None:
    """1000 datagrams through a link with 10 % loss and 5 ms latency, captured: the summary's
    loss share within 4.5 points of 10 % (four standard deviations of 1000 draws), every frame
    counted once, and the forwarded ones' median delay at least 5 ms and within 1.5 ms of it."""
    engine = start_engine({"egress": {"loss": 0.1, "latency": "5ms"}})
    path = tmp_path / "fates.pcapng"
    capture = background.start([*CLI, "capture", str(path), "--control", engine.control,
                                "--direction", "egress", "--seconds", "6"])  # fmt: skip
    deadline = time.monotonic() + 10
    while "egress: capturing fates" not in engine.stderr():
        assert time.monotonic() < deadline, engine.stderr()
        time.sleep(0.05)
    receiver = background.start(probe(lab, "server", "recv", "6004", "--idle", "1.5"))
    wait_udp_bound(lab, "server", 6004)
    subprocess.run(probe(lab, "client", "send", SERVER_IP, "6004", "--count", "1000", "--pps",
                         "500"), check=True, cwd=ROOT, timeout=30)  # fmt: skip
    received = json.loads(receiver.communicate(timeout=30)[0])["received"]
    capture.communicate(timeout=30)
    assert capture.returncode == 0
    out = subprocess.run([*CLI, "fates", str(path), "--json"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True).stdout  # fmt: skip
    assert out.count("\n") == 1
    (link,) = json.loads(out)["links"]
    assert (link["direction"], link["link"]) == ("egress", "default")
    assert sum(link["fates"].values()) == link["frames"] >= 1000
    assert link["fates"]["forwarded"] >= received
    assert abs(link["fates"]["loss"] / link["frames"] - 0.1) <= 0.045, link["fates"]
    assert 5.0 <= link["delay_min_ms"] <= link["delay_p50_ms"] <= 6.5, link
    assert link["loss_bursts"] == sorted(link["loss_bursts"], reverse=True) != []
