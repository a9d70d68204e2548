"""One gate for every door (issue 34, items 2, 10, 11, 14): each forbidden change, sent through
each door that can carry it, is refused in the same words and leaves the spec in force as it
was. One real engine in a lab serves the whole table: its control socket (the TUI's door
too), the CLI's `linkshaper set`, SIGHUP with its spec file, and two `linkshaper http`
processes (one with `--trace-dir`, one without) for HTTP POST, PATCH and replay."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.lab.harness import EngineProcess
from engine.lab.lab import Lab
from engine.model.spec import MAX_LABEL_LENGTH, UNLIMITED_RATE, Spec, SpecError
from engine.model.spec_patch import patch_spec
from engine.model.units import UnitError, parse_rate
from engine.protocol.client import ControlClient
from engine.protocol.messages import Error, SetSpec, SpecReply, decode
from shaper_tui.scales import RATE
from tests.cli_helpers import set_refusal
from tests.conftest import lab_prerequisites

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
#: How long any one thing the engine does here may take (a refusal, a replay of one step, a
#: reload): far more than it needs on a busy 2-core machine; it is a bound, not a pace.
WAIT = 15.0
BASE_SPEC: dict[str, Any] = {
    "default_link": {"ingress": {"latency": 1}, "egress": {"rate": 5_000_000}},
    "flows": [{"label": "web", "flow": {"protocol": "tcp", "port_min": 80, "port_max": 80}}],
}
LONG_LABEL = "x" * (MAX_LABEL_LENGTH + 1)


@dataclass
class Gates:
    """The engine and its doors."""

    engine: EngineProcess
    traces: Path  # the HTTP API's --trace-dir, with ok.trace in it
    outside: Path  # a good trace file outside it
    http: str  # base URL of `linkshaper http --trace-dir`
    http_no_dir: str  # base URL of `linkshaper http` without one
    http_relative: str  # base URL of `linkshaper http --trace-dir traces`, run in the workdir
    base: Spec

    def spec(self) -> Spec:
        with ControlClient(self.engine.control) as client:
            return client.get_spec()

    def restore(self) -> None:
        with ControlClient(self.engine.control) as client:
            client.set_spec(self.base, source="test")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _serve_http(
    control: str, port: int, *extra: str, log: Any, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", "http", "--control", control,
         "--listen", f"127.0.0.1:{port}", *extra],
        cwd=cwd, stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    deadline = time.monotonic() + WAIT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                server.wait(5)
                raise AssertionError(f"no HTTP API on port {port}") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gates]:
    reason = lab_prerequisites()
    if reason:
        pytest.skip(reason)
    lab = Lab(f"lsg{os.getpid() % 100000}")
    lab.up(offloads=True)
    workdir = tmp_path_factory.mktemp("gate")
    traces = workdir / "traces"
    traces.mkdir()
    (traces / "ok.trace").write_text("1\n2\n3\n")
    outside = workdir / "outside.trace"
    outside.write_text("1\n2\n")
    servers: list[subprocess.Popen[bytes]] = []
    log = open(workdir / "http.stderr", "wb")  # noqa: SIM115 - closed below
    engine = EngineProcess(lab, workdir, BASE_SPEC)
    try:
        engine.wait_ready()
        ports = _free_port(), _free_port(), _free_port()
        servers.append(_serve_http(engine.control, ports[0], "--trace-dir", str(traces), log=log))
        servers.append(_serve_http(engine.control, ports[1], log=log))
        servers.append(
            _serve_http(engine.control, ports[2], "--trace-dir", "traces", log=log, cwd=workdir)
        )
        with ControlClient(engine.control) as client:
            base = client.get_spec()
        http, http_no_dir, http_relative = (f"http://127.0.0.1:{port}" for port in ports)
        yield Gates(engine, traces, outside, http, http_no_dir, http_relative, base)
        assert engine.process.poll() is None, engine.stderr()
        assert all(server.poll() is None for server in servers)
    finally:
        for server in servers:
            if server.poll() is None:
                server.terminate()
                server.wait(10)
        log.close()
        engine.close()
        lab.down()


# --- the doors: each sends one change and says the refusal it shows (None: accepted) -------


def _call(url: str, method: str, body: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _http_error(status: int, text: str) -> str | None:
    if status == 200:
        return None
    assert status == 422, (status, text)
    error: str = json.loads(text)["error"]
    return error


def _nested(path: str, value: str) -> str:
    """`{"egress": {"latency": VALUE}}` for `egress.latency`, VALUE as raw JSON text (so that
    `NaN` and `1e400` go as a client would write them)."""
    parts = path.split(".")
    if parts[:1] == ["flows"] and parts[2:] == ["label"]:  # a flow's label: the flow whole
        return f'{{"flows": [{{"label": {value}}}]}}'
    text = value
    for part in reversed(parts):
        text = f"{{{json.dumps(part)}: {text}}}"
    return text


def http_post(g: Gates, path: str, value: str, url: str | None = None) -> str | None:
    return _http_error(*_call(f"{url or g.http}/qos", "POST", _nested(path, value).encode()))


def http_patch(g: Gates, path: str, value: str, url: str | None = None) -> str | None:
    body = f"{{{json.dumps(path)}: {value}}}".encode()
    return _http_error(*_call(f"{url or g.http}/qos", "PATCH", body))


def http_replay(g: Gates, path: str, value: str, url: str | None = None) -> str | None:
    """A one-step replay: refused up front (422, its words: the timeline's check, or the
    gate's for the step due at once, which the answer waits for), or run; then the replay is
    awaited, and a step refused while it runs shows as the spec not changing."""
    line = f'{{"at": 0, "set": {{{json.dumps(path)}: {value}}}}}\n'
    if path.startswith("flows."):  # a timeline's patch is checked on pass-through: no flows
        line = f'{{"at": 0, "spec": {_nested(path, value)}}}\n'
    status, text = _call(f"{url or g.http}/timeline/replay", "POST", line.encode())
    if status != 200:
        return _http_error(status, text)
    deadline = time.monotonic() + WAIT
    while (
        json.loads(_call(f"{url or g.http}/timeline/replay", "GET")[1]).get("finished") is not True
    ):
        assert time.monotonic() < deadline, "the replay never finished"
        time.sleep(0.05)
    return "refused while replaying" if g.spec() == g.base else None


def http_post_no_dir(g: Gates, path: str, value: str) -> str | None:
    return http_post(g, path, value, g.http_no_dir)


def http_patch_no_dir(g: Gates, path: str, value: str) -> str | None:
    return http_patch(g, path, value, g.http_no_dir)


def http_replay_no_dir(g: Gates, path: str, value: str) -> str | None:
    return http_replay(g, path, value, g.http_no_dir)


def control_socket(g: Gates, path: str, value: str) -> str | None:
    """A PatchSpec as a control client (the TUI, a script) sends it, value as raw JSON."""
    frame = f'{{"type": "patch_spec", "changes": {{{json.dumps(path)}: {value}}}}}'
    with ControlClient(g.engine.control) as client:
        client._conn.send_bytes(frame.encode())
        reply = decode(client._conn.recv_bytes())
    if isinstance(reply, Error):
        return reply.message
    assert isinstance(reply, SpecReply)
    return None


def cli_set(g: Gates, path: str, value: str) -> str | None:
    return set_refusal(g.engine.control, f"{path}={value}")


def sighup(g: Gates, path: str, value: str) -> str | None:
    """The spec file says it, the engine is told to reload; the log says why not."""
    before = g.engine.stderr().count("SIGHUP: ")
    g.engine.spec_path.write_text(_nested(path, value))
    g.engine.signal(signal.SIGHUP)
    deadline = time.monotonic() + WAIT
    while True:
        lines = [ln for ln in g.engine.stderr().splitlines() if "SIGHUP: " in ln]
        if len(lines) > before:
            break
        if g.spec() != g.base:
            return None
        assert time.monotonic() < deadline, "the engine never said anything about the reload"
        time.sleep(0.05)
    said = lines[before]
    head = f"SIGHUP: {g.engine.spec_path}: "
    tail = "; keeping the spec in force"
    assert head in said and said.endswith(tail), said
    return said[said.index(head) + len(head) : -len(tail)]


Door = Callable[[Gates, str, str], "str | None"]
ALL_DOORS: dict[str, Door] = {
    "http_post": http_post, "http_patch": http_patch, "http_replay": http_replay,
    "control_socket": control_socket, "cli_set": cli_set, "sighup": sighup,
}  # fmt: skip
NETWORK_DOORS: dict[str, Door] = {
    "http_post": http_post, "http_patch": http_patch, "http_replay": http_replay,
    "http_post_no_dir": http_post_no_dir, "http_patch_no_dir": http_patch_no_dir,
    "http_replay_no_dir": http_replay_no_dir,
}  # fmt: skip

# (case, field path, value as JSON text, the gate's words, the doors that must refuse it)
CASES: list[tuple[str, str, str, str, dict[str, Door]]] = [
    ("bool_rate", "egress.rate", "true",
     "default_link.egress.rate: must be a valid integer (got true)", ALL_DOORS),
    ("bool_latency", "egress.latency", "false",
     "default_link.egress.latency: must be a valid number (got false)", ALL_DOORS),
    ("negative", "egress.latency", "-5",
     "default_link.egress.latency: must be at least 0 ms (got -5 ms)", ALL_DOORS),
    ("nan", "egress.latency", "NaN",
     "default_link.egress.latency: not a finite duration: 'nan'", ALL_DOORS),
    ("1e400", "ingress.loss", "1e400", "default_link.ingress.loss: not a finite ratio: 'inf'",
     ALL_DOORS),
    ("unknown_field", "egress.latncy", "5", "default_link.egress.latncy: unknown field",
     ALL_DOORS),
    ("unknown_unit", "egress.rate", '"10 furlongs"',
     "default_link.egress.rate: unknown rate unit 'furlongs' "
     "(use bit, kbit, mbit, gbit, or unlimited)", ALL_DOORS),
    ("long_label", "flows.web.label", json.dumps(LONG_LABEL),
     f"flows[0].label: String should have at most {MAX_LABEL_LENGTH} characters", ALL_DOORS),
    ("pid_max_trace", "egress.trace", '"/proc/sys/kernel/pid_max"', "", NETWORK_DOORS),
    ("outside_trace", "egress.trace", "OUTSIDE", "", NETWORK_DOORS),
    ("escaping_trace", "ingress.trace", '"../outside.trace"', "", NETWORK_DOORS),
]  # fmt: skip

TABLE = [
    pytest.param(path, value, words, door, id=f"{case}-{name}")
    for case, path, value, words, doors in CASES
    for name, door in doors.items()
]


def _trace_refusal(door: Door) -> str:
    """What the gate says of a trace a network client may not name."""
    if door in (http_post_no_dir, http_patch_no_dir, http_replay_no_dir):
        return "traces cannot be named over HTTP unless the engine's API runs with --trace-dir DIR"
    return "only files in the trace directory may be named"


@pytest.mark.parametrize(("path", "value", "words", "door"), TABLE)
def test_every_door_refuses_in_the_gates_words_and_nothing_changes(
    gates: Gates, path: str, value: str, words: str, door: Door
) -> None:
    value = value.replace("OUTSIDE", json.dumps(str(gates.outside)))
    gates.restore()
    refusal = door(gates, path, value)
    assert gates.spec() == gates.base, "a refused change is in force"
    assert refusal is not None
    if refusal == "refused while replaying":  # the replay's status words: another change
        return
    if not words:
        words = f"default_link.{path}: {_trace_refusal(door)}"
    # The gate's words, whole; a timeline names its line first, and where in the line; a
    # replay's first step refused when it comes names the step.
    replayed = (f"timeline line 1: set: {words}", f"timeline line 1: spec.{words}",
                f"step 1 (at 0.0 s): {words}")  # fmt: skip
    assert refusal == words or refusal in replayed, refusal


def test_trusted_doors_still_name_any_trace_and_the_network_its_directory(gates: Gates) -> None:
    """The trust model stays: root's control socket and the CLI name any file; the HTTP API,
    a replay over it included, names files in its --trace-dir by their name."""
    gates.restore()
    try:
        assert cli_set(gates, "egress.trace", json.dumps(str(gates.outside))) is None
        assert gates.spec().default_link.egress.trace == str(gates.outside)
        gates.restore()
        assert http_replay(gates, "ingress.trace", '"ok.trace"') is None
        wanted = str((gates.traces / "ok.trace").resolve())
        assert gates.spec().default_link.ingress.trace == wanted
        # A --trace-dir given relative to where `linkshaper http` runs means that directory,
        # wherever the engine runs.
        gates.restore()
        assert http_replay(gates, "ingress.trace", '"ok.trace"', gates.http_relative) is None
        assert gates.spec().default_link.ingress.trace == wanted
        # A trace already in force may be named again from the network (read, change, write).
        assert http_patch(gates, "ingress.trace", json.dumps(wanted), gates.http_no_dir) is None
    finally:
        gates.restore()


def test_unlimited_and_blocked_are_rates_in_every_door(gates: Gates) -> None:
    """Item 14: the TUI took `unlimited`, `linkshaper set` refused it. Now one parser: the
    model's, for the CLI, the HTTP API and the TUI alike."""
    gates.restore()
    try:
        assert cli_set(gates, "egress.rate", "unlimited") is None
        assert gates.spec().default_link.egress.rate == UNLIMITED_RATE
        assert http_patch(gates, "ingress.rate", '"blocked"') is None
        assert gates.spec().default_link.ingress.rate == 0
        assert http_post(gates, "egress.rate", '"Unlimited"') is None
        assert gates.spec().default_link.egress.rate == UNLIMITED_RATE
    finally:
        gates.restore()


@pytest.mark.parametrize(
    "text", ["unlimited", "blocked", "10mbit", "1.5 gbit", "max", "none", "off", "-5", "", "x"]
)
def test_the_tui_reads_a_rate_as_the_engine_does(text: str) -> None:
    """The TUI's prompt parses with the model's parser: the same words, the same refusals."""
    try:
        expected: float | None = float(parse_rate(text))
    except UnitError:
        expected = None
    try:
        got: float | None = RATE.parse(text)
    except UnitError:
        got = None
    assert got == expected


def test_a_long_label_can_be_flushed_and_captured_by_name(gates: Gates) -> None:
    """Item 11: labels had no limit, `link=` of /flush and /capture took 200 characters. Now
    the one limit: a label as long as a spec takes can be named in both."""
    label = "y" * MAX_LABEL_LENGTH
    gates.restore()
    try:
        assert http_patch(gates, "flows.web.label", json.dumps(label)) is None
        query = urllib.parse.urlencode({"link": label})
        status, text = _call(f"{gates.http}/flush?{query}", "POST")
        assert status == 200, text
        with urllib.request.urlopen(
            f"{gates.http}/capture?{query}&seconds=0.2", timeout=WAIT
        ) as answer:
            assert answer.status == 200
            answer.read()
    finally:
        gates.restore()


def test_booleans_are_never_numbers_in_the_model() -> None:
    """Item 10 at its root: the unit parsers and a patch take `True` for no number."""
    for parse in (parse_rate,):
        with pytest.raises(UnitError):
            parse(True)
    base = Spec()
    for path in ("egress.rate", "egress.latency", "egress.loss", "egress.gap"):
        with pytest.raises(SpecError, match="must be a valid"):
            patch_spec(base, {path: True})


def test_the_gate_refuses_a_forged_trace_from_a_network_set_spec(gates: Gates) -> None:
    """A whole spec stamped as the network's (what `linkshaper http` sends for a POST or a
    replay step) is held to the trace directory by the supervisor itself."""
    spec = Spec.model_validate({"egress": {"trace": "/proc/sys/kernel/pid_max"}})
    with ControlClient(gates.engine.control) as client:
        reply = client.request(SetSpec(spec=spec, origin="network", trace_dir=str(gates.traces)))
    assert isinstance(reply, Error)
    assert (
        reply.message == "default_link.egress.trace: only files in the trace directory may be named"
    )
    assert gates.spec() == gates.base


def test_a_replay_over_the_engines_own_http_api_passes_the_gate(tmp_path: Path) -> None:
    """Item 2 where the API runs in the engine's process (`run --http`): the replay's steps
    go to the supervisor itself, stamped by the same door. Without --trace-dir, a replay put
    /proc/sys/kernel/pid_max in force on both directions; now it is refused and nothing
    changes. (A supervisor over socket pairs: its real workers, no interfaces.)"""
    from engine.daemon.config import EngineConfig, GivenPorts
    from engine.daemon.supervisor import Supervisor
    from engine.web.api import create_http_app
    from engine.web.server import HttpServer

    mine: list[socket.socket] = []
    given: dict[Any, tuple[socket.socket, socket.socket]] = {}
    for direction in ("ingress", "egress"):
        rx, inlet = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        tx, outlet = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.setblocking(False)
        given[direction] = (rx, tx)
        mine += [rx, inlet, tx, outlet]
    base = Spec.model_validate(BASE_SPEC)
    config = EngineConfig("outer0", "inner0", persist=False, ports=GivenPorts(given))
    supervisor = Supervisor(config, base)
    supervisor.start()
    port = _free_port()
    server = HttpServer(create_http_app(supervisor), "127.0.0.1", port)
    try:
        server.start()
        url = f"http://127.0.0.1:{port}"
        line = b'{"at": 0, "set": {"egress.trace": "/proc/sys/kernel/pid_max", '
        line += b'"ingress.trace": "/proc/sys/kernel/pid_max"}}\n'
        status, text = _call(f"{url}/timeline/replay", "POST", line)
        assert status == 422 and "traces cannot be named over HTTP" in text, text
        assert json.loads(_call(f"{url}/timeline/replay", "GET")[1])["finished"] is True
        assert supervisor.spec == base
        body = b'{"egress.trace": "/proc/sys/kernel/pid_max"}'
        assert _http_error(*_call(f"{url}/qos", "PATCH", body)) == (
            "default_link.egress.trace: traces cannot be named over HTTP unless the engine's "
            "API runs with --trace-dir DIR"
        )
    finally:
        server.stop()
        supervisor.shutdown()
        for sock in mine:
            sock.close()


def test_a_patch_naming_a_label_too_long_to_be_one_says_so_briefly() -> None:
    """A patch of `flows.<300 characters>.egress.rate`: no flow can have that label, and the
    refusal says why in a short line (before: the label echoed whole, twice, 620 characters)."""
    with pytest.raises(SpecError) as refused:
        patch_spec(Spec(), {f"flows.{'x' * 300}.egress.rate": "1mbit"})
    assert str(refused.value) == f"flows.{'x' * 20}…: a label is at most 200 characters"
