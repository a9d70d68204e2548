"""`linkshaper doctor` as a user runs it (the real command, a subprocess), where no root is
needed: its JSON's shape, its exit code's rule, and what it says of an engine's version over
the control socket and over HTTP. The engine here is the real control server and the real
HTTP API in front of a handler that answers as an engine of another version would (the real
engine, root and all, is in tests/lab/test_doctor.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

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
from engine.web.server import HttpServer, RemoteEngine

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
    assert set(report) == {"version", "for", "ok", "missing", "checks"}
    assert report["version"] == __version__ and report["for"] == "run"
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
    line = check(report, "engine_version")
    assert code == 0 and line["status"] == "warn"
    assert "0.0.1" in line["detail"] and __version__ in line["detail"] and line["fix"]
    code, report = doctor("--for", "client", "--control", engine_at(None))
    line = check(report, "engine_version")
    assert code == 0 and line["status"] == "warn" and "does not say its version" in line["detail"]


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
