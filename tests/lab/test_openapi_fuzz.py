"""The HTTP API against its own OpenAPI schema, fuzzed by schemathesis: every operation (the
endpoint that streams for ever excluded) with generated valid and invalid requests, bounded in
number, against a real engine in the lab behind `linkshaper http` on loopback. No answer may be
a 5xx, and each must match the schema (status code, content type, body)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from engine.lab.harness import EngineProcess
from engine.lab.lab import Lab
from tests import ROOT
from tests.conftest import lab_prerequisites

pytestmark = pytest.mark.lab

# A timeline is JSON Lines: text, sent as it is.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

PORT = 8093
MAX_EXAMPLES = 50


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    reason = lab_prerequisites()
    if reason:
        pytest.skip(reason)
    lab = Lab(f"lsf{os.getpid() % 100000}")
    lab.up(offloads=True)
    workdir = tmp_path_factory.mktemp("fuzz")
    engine = EngineProcess(lab, workdir, {"ingress": {"latency": 1}, "egress": {}})
    server: subprocess.Popen[bytes] | None = None
    log = open(Path(workdir) / "http.stderr", "wb")  # noqa: SIM115 - closed below
    try:
        engine.wait_ready()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli.main",
                "http",
                "--control",
                engine.control,
                "--listen",
                f"127.0.0.1:{PORT}",
            ],
            cwd=ROOT,
            stderr=log,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "no HTTP API"
                time.sleep(0.1)
        schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{PORT}/openapi.json")
        yield schema
        assert engine.process.poll() is None, engine.stderr()
        assert server.poll() is None
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(10)
        log.close()
        engine.close()
        lab.down()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run: CI must not find a new one by chance
    database=None,
)
def test_every_operation_answers_by_its_schema_and_never_5xx(case: Any) -> None:
    """All of schemathesis's checks but one: a schema cannot say every rule (a unit's range in
    `"10mbit"`, port_min <= port_max, unique labels, which dotted paths a patch may name, that
    traces come only from the operator's directory), so a request the schema allows may still
    be refused with 422 (`positive_data_acceptance`). Every request the schema forbids must be
    refused, though (`negative_data_rejection`), and nothing may answer 5xx."""
    if case.path == "/stats/stream":
        pytest.skip("streams until the client goes: tests/lab/test_http_api.py reads it")
    if case.path == "/capture":
        pytest.skip("streams for seconds: tests/lab/test_capture_e2e.py reads it")
    case.call_and_validate(timeout=30, excluded_checks=[positive_data_acceptance])
