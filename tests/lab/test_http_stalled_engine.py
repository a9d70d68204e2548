"""`linkshaper http` in front of a stopped supervisor: the caller gets a 503 with one line
within the deadline (it once waited as long as the stop lasted), and the change it was told
failed is not put in force when the supervisor runs again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import pytest

from engine.lab.harness import EngineProcess
from engine.lab.lab import Lab
from engine.protocol.client import ControlClient
from engine.web.remote_engine import API_REPLY_TIMEOUT
from tests.conftest import lab_prerequisites

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
PORT = 18721
SPEC = {"default_link": {"ingress": {}, "egress": {"latency": 1}}}
#: The deadline plus what a busy 2-core machine may add to answering.
SLACK = 4.0


def _serve(control: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", "http", "--control", control,
         "--listen", f"127.0.0.1:{PORT}"],
        cwd=ROOT, stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and server.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    server.wait(5)
    raise AssertionError("no HTTP API")


def _patch(body: dict[str, str], timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/qos", data=json.dumps(body).encode(), method="PATCH"
    )
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_stopped_supervisor_gets_a_503_and_the_change_is_not_applied_later(
    tmp_path: Path,
) -> None:
    reason = lab_prerequisites()
    if reason:
        pytest.skip(reason)
    lab = Lab("ffh")
    lab.up(offloads=True)
    engine = EngineProcess(lab, tmp_path, SPEC)
    server: subprocess.Popen[bytes] | None = None
    try:
        engine.wait_ready()
        with open(tmp_path / "http.stderr", "wb") as log:
            server = _serve(engine.control, log)
        assert _patch({"egress.latency": "2ms"}, 15)[0] == 200
        os.kill(engine.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            status, text = _patch({"egress.latency": "36ms"}, API_REPLY_TIMEOUT + 5)
            took = time.monotonic() - started
        finally:
            os.kill(engine.process.pid, signal.SIGCONT)
        assert status == 503, text
        assert took < API_REPLY_TIMEOUT + SLACK, took
        error = json.loads(text)["error"]
        assert "no answer" in error and "\n" not in error, error
        time.sleep(1.0)  # the supervisor reads the abandoned request now, if ever
        assert _patch({"ingress.latency": "3ms"}, 15)[0] == 200  # answers again at once
        with ControlClient(engine.control) as client:
            spec = client.get_spec()
        assert spec.default_link.egress.latency == 2, spec.default_link.egress
        assert spec.default_link.ingress.latency == 3
    finally:
        if server is not None:
            server.kill()
            server.wait(5)
        engine.close()
        lab.down()
