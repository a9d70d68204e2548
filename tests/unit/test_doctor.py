"""`linkshaper doctor` as a user runs it (the real command, a subprocess), where no root is
needed: its JSON's shape, its exit code's rule, and what it says of an engine's version over
the control socket and over HTTP. The engine here is the real control server and the real
HTTP API in front of a handler that answers as an engine of another version would (the real
engine, root and all, is in tests/lab/test_doctor.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.doctor.host import module_unloadable
from engine.doctor.report import Check, exit_code, needed
from engine.model.spec import PASS_THROUGH
from engine.model.version import __version__
from engine.protocol.control_server import ControlServer
from engine.protocol.messages import (
    Error,
    GetSpec,
    GetVersion,
    Message,
    SpecReply,
    Subscribe,
    Version,
)
from engine.web.api import create_http_app
from engine.web.remote_engine import RemoteEngine
from engine.web.server import HttpServer

LINKSHAPER = str(Path(sys.executable).parent / "linkshaper")
CHECK_FIELDS = {"name", "ok", "status", "required", "detail", "fix"}
TOKEN = "doctor-t0ken"


def doctor(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """`linkshaper doctor --json ARGS`: its exit code and its one JSON object."""
    done = subprocess.run([LINKSHAPER, "doctor", "--json", *args], capture_output=True,
                          text=True, timeout=120, env=env)  # fmt: skip
    assert done.stderr == "", done.stderr
    assert done.stdout.count("\n") == 1, done.stdout  # one object, one line
    return done.returncode, json.loads(done.stdout)


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in report["checks"] if c["name"] == name]
    assert len(found) == 1, (name, [c["name"] for c in report["checks"]])
    return found[0]


@pytest.fixture
def engine_at(tmp_path: Path) -> Iterator[Callable[[str | None], str]]:
    """A control socket answering `get_version` with the version given (None: with an error,
    as an engine older than the request does), and the spec for anything that asks."""
    servers: list[ControlServer] = []

    def serve(version: str | None) -> str:
        def handle(request: Message) -> Message:
            if isinstance(request, GetVersion):
                if version is None:
                    return Error(message="bad request: Input tag 'get_version' does not match")
                return Version(version=version)
            if isinstance(request, GetSpec | Subscribe):
                return SpecReply(spec=PASS_THROUGH)
            return Error(message=f"not a request: {request.type}")

        server = ControlServer(str(tmp_path / f"engine{len(servers)}.sock"), handle)
        server.start()
        servers.append(server)
        assert server.path is not None
        return server.path

    try:
        yield serve
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def http_api() -> Iterator[Callable[[str], int]]:
    """`linkshaper http` for the engine at a control socket (RemoteEngine, the real app and
    server) with TOKEN, on a free loopback port."""
    servers: list[HttpServer] = []

    def serve(control: str) -> int:
        server = HttpServer(create_http_app(RemoteEngine(control), TOKEN), "127.0.0.1", 0)
        server.start()
        servers.append(server)
        port: int = server.server.servers[0].sockets[0].getsockname()[1]
        return port

    try:
        yield serve
    finally:
        for server in servers:
            server.stop()


def test_the_json_is_one_object_with_a_list_of_checks(tmp_path: Path) -> None:
    code, report = doctor("--control", str(tmp_path / "nothing.sock"))
    assert set(report) == {"version", "engine_version", "for", "ok", "missing", "checks"}
    assert report["version"] == __version__ and report["for"] == "run"
    assert report["engine_version"] is None  # no engine reached
    names = [c["name"] for c in report["checks"]]
    assert len(names) == len(set(names))
    for item in report["checks"]:
        assert set(item) == CHECK_FIELDS, item
        assert re.fullmatch(r"[a-z0-9_]+(\.[\w.-]+)?", item["name"]), item["name"]
        assert item["status"] in ("ok", "missing", "warn")
        assert item["ok"] == (item["status"] == "ok")
        assert item["detail"]
        assert item["fix"] is None or item["fix"]
    assert set(names) >= {
        "af_packet", "packet_vnet_hdr", "cap_net_admin", "cap_net_raw", "cap_sys_nice",
        "qdisc_netem", "qdisc_htb", "qdisc_tbf", "qdisc_fq_codel", "qdisc_clsact",
        "action_mirred", "control_socket", "engine_version",
    }  # fmt: skip
    # --control named, so needed; nothing there: exit 1, and the fix starts one there.
    control = check(report, "control_socket")
    assert (control["status"], control["required"]) == ("missing", True)
    assert control["fix"] == f"linkshaper run OUTER INNER --control {tmp_path}/nothing.sock"
    assert code == 1 and report["ok"] is False and "control_socket" in report["missing"]


def test_a_client_needs_the_engine_and_what_it_names(engine_at: Callable[..., str]) -> None:
    path = engine_at(__version__)
    code, report = doctor("--for", "client", "--control", path, "lo")
    assert code == 0 and report["ok"] is True and report["missing"] == [], report["missing"]
    assert check(report, "engine_version")["status"] == "ok"
    assert check(report, "interface.lo")["required"] is True
    assert check(report, "offloads.lo")["required"] is False
    # a client needs no kernel feature: whatever they are here, none is required
    assert not check(report, "af_packet")["required"]
    code, report = doctor("--for", "client", "--control", path, "lo", "--interfaces", "nosuch0")
    assert code == 1 and report["missing"] == ["interface.nosuch0"]
    assert check(report, "interface.nosuch0")["fix"]


def test_another_engine_version_is_a_warning_not_a_failure(
    engine_at: Callable[..., str],
) -> None:
    code, report = doctor("--for", "client", "--control", engine_at("0.0.1"))
    assert report["engine_version"] == "0.0.1"
    line = check(report, "engine_version")
    assert code == 0 and line["status"] == "warn"
    assert "0.0.1" in line["detail"] and __version__ in line["detail"] and line["fix"]
    code, report = doctor("--for", "client", "--control", engine_at(None))
    line = check(report, "engine_version")
    assert code == 0 and line["status"] == "warn" and "does not say its version" in line["detail"]
    assert report["engine_version"] is None


def test_http_needs_its_token_and_says_the_engine_version(
    engine_at: Callable[..., str], http_api: Callable[[str], int]
) -> None:
    control = engine_at("0.0.2")
    url = f"127.0.0.1:{http_api(control)}"
    env = {k: v for k, v in os.environ.items() if k != "LINKSHAPER_HTTP_TOKEN"}
    code, report = doctor("--for", "client", "--control", control, "--http", url, env=env)
    api = check(report, "http_api")
    assert code == 1 and report["missing"] == ["http_api"]
    assert api["status"] == "missing" and api["fix"].startswith("--token TOKEN")
    for extra, more_env in ((("--token", TOKEN), {}), ((), {"LINKSHAPER_HTTP_TOKEN": TOKEN})):
        code, report = doctor("--for", "client", "--control", control, "--http", url, *extra,
                              env={**env, **more_env})  # fmt: skip
        assert code == 0, report["missing"]
        assert check(report, "http_api")["status"] == "ok"
        version = check(report, "http_version")
        assert version["status"] == "warn" and "engine 0.0.2" in version["detail"]


def test_an_api_in_front_of_an_older_engine_answers_502_and_doctor_warns(
    engine_at: Callable[..., str], http_api: Callable[[str], int]
) -> None:
    control = engine_at(None)
    url = f"http://127.0.0.1:{http_api(control)}"
    code, report = doctor("--for", "client", "--control", control, "--http", url, "--token", TOKEN)
    assert code == 0
    assert check(report, "http_api")["status"] == "ok"
    assert "502" in check(report, "http_version")["detail"]


def test_the_exit_rule_counts_only_needed_checks_that_are_missing() -> None:
    checks = [
        Check("af_packet", "ok", "-"),
        Check("cap_net_raw", "warn", "-"),
        Check("qdisc_netem", "missing", "-"),
        Check("interface.x", "ok", "-"),
    ]
    assert exit_code(needed(checks, "run", frozenset())) == 0  # netem: not run's need
    assert exit_code(needed(checks, "ns-tc", frozenset())) == 1  # but the tc backend's
    assert exit_code(needed([Check("interface.x", "missing", "-")], "run",
                            frozenset({"interface.x"}))) == 1  # fmt: skip
    assert exit_code(needed([Check("interface.x", "missing", "-")], "run", frozenset())) == 0


NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="drops privileges: needs root")


def test_a_missing_interface_is_named_with_those_that_are_here() -> None:
    code, report = doctor("nosuch0")
    line = check(report, "interface.nosuch0")
    assert code == 1 and "no interface nosuch0 in this network namespace" in line["detail"]
    here = [name for _, name in socket.if_nameindex()]
    assert "lo" in line["fix"] and all(name in line["fix"] for name in here[:8])
    assert line["fix"].endswith("ip netns exec NS linkshaper doctor --json nosuch0")


def test_a_refused_http_api_is_named_in_its_fix() -> None:
    with socket.socket() as free:  # a port nothing listens on: bound, then let go
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    code, report = doctor("--http", f"127.0.0.1:{port}")
    fix = check(report, "http_api")["fix"]
    assert code == 1 and f"linkshaper http --listen 127.0.0.1:{port}" in fix, fix


def test_the_text_marks_what_is_needed_in_a_column_of_its_own() -> None:
    done = subprocess.run([LINKSHAPER, "doctor", "--for", "client", "lo"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert "(needed)" not in done.stdout
    lines = done.stdout.splitlines()
    lo = next(line for line in lines if " interface.lo " in line)
    assert re.match(r"^ok +needed +interface\.lo +lo is up$", lo), lo
    netem = next(line for line in lines if " qdisc_netem " in line)
    assert re.match(r"^(ok|missing|warn) {2,}qdisc_netem  ", netem), netem


@as_root
def test_a_qdisc_this_kernel_cannot_load_is_fixed_by_the_engine_backend() -> None:
    _, report = doctor()
    for name in ("qdisc_netem", "qdisc_fq_codel"):
        line = check(report, name)
        if line["status"] == "ok":
            continue  # this kernel has it: nothing to fix
        loadable = shutil.which("modprobe") and Path("/lib/modules", os.uname().release).is_dir()
        assert ("modprobe" in line["fix"]) == bool(loadable), line
        if not loadable:
            assert "cannot be loaded here" in line["detail"]
            assert line["fix"].startswith("--backend engine")


def test_modprobe_is_offered_only_where_it_and_the_module_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "modules" / os.uname().release
    tool = tmp_path / "bin" / "modprobe"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tool.parent))
    assert "no " in str(module_unloadable("sch_netem", tmp_path / "modules"))
    tree.mkdir(parents=True)
    (tree / "modules.dep").write_text("kernel/net/sched/sch_htb.ko: \n")
    assert module_unloadable("sch_netem", tmp_path / "modules") == f"no sch_netem module in {tree}"
    assert module_unloadable("sch_htb", tmp_path / "modules") is None
    monkeypatch.setenv("PATH", str(tmp_path))
    assert module_unloadable("sch_htb", tmp_path / "modules") == "no modprobe here"


@as_root
def test_without_net_admin_the_qdisc_probe_says_how_to_get_it() -> None:
    bounded = ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin"]
    done = subprocess.run([*bounded, LINKSHAPER, "doctor", "--json"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    report = json.loads(done.stdout)
    for name in ("qdisc_netem", "qdisc_htb"):
        line = check(report, name)
        assert line["status"] == "warn" and "not permitted" in line["detail"], line
        assert line["fix"].startswith("--cap-add NET_ADMIN"), line


@pytest.fixture
def root_engine() -> Iterator[str]:
    """A control socket of root's (key 0600) in a folder anyone may enter."""
    folder = Path(tempfile.mkdtemp(prefix="doctor-"))
    folder.chmod(0o755)
    server = ControlServer(str(folder / "engine.sock"), lambda _: Version(version=__version__))
    server.start()
    try:
        yield str(folder / "engine.sock")
    finally:
        server.close()
        shutil.rmtree(folder)


@as_root
def test_as_nobody_the_fixes_fit_the_command_line(root_engine: str) -> None:
    done = subprocess.run([*NOBODY, LINKSHAPER, "doctor", "--json", "--for", "client",
                           "--control", root_engine], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    report = json.loads(done.stdout)
    control = check(report, "control_socket")
    assert f"an engine is at {root_engine}" in control["detail"]
    rerun = f"sudo linkshaper doctor --json --for client --control {root_engine} "
    assert control["fix"].startswith(rerun), control["fix"]
    # Only `run --realtime` needs it: the fix says so (it said nothing before).
    assert check(report, "cap_sys_nice")["fix"].startswith("only `run --realtime` needs it: sudo")
    assert "linkshaper ns add" in check(report, "cap_sys_admin")["fix"]
    for name in ("cap_net_raw", "af_packet"):  # a client needs neither: the engine does
        assert check(report, name)["fix"].endswith("sudo linkshaper run OUTER INNER")
    assert report["missing"] == ["control_socket"]


@as_root
def test_as_nobody_a_client_is_told_the_engine_is_there_but_not_its(root_engine: str) -> None:
    done = subprocess.run([*NOBODY, LINKSHAPER, "get", "--control", root_engine],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert f"an engine is at {root_engine}" in done.stderr
    assert "readable by root only" in done.stderr
