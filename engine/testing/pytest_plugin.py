"""The `shaped_link` pytest fixture, loaded by pytest from the package's `pytest11` entry point
(`pip install linkshaper` is all it takes): a client and a server network namespace with a
linkshaper engine between them, for testing software on a bad link.

    def test_upload_survives_loss(shaped_link):
        shaped_link.set("egress", loss=0.05)          # client -> server
        shaped_link.popen("server", "iperf3", "-s", "-1")
        result = shaped_link.run("client", "iperf3", "-c", shaped_link.server_ip, "-t", "3")
        assert result.returncode == 0

    @pytest.mark.parametrize("shaped_link", ["WPT LTE", "WPT DSL"], indirect=True)
    def test_page_loads_on(shaped_link): ...

The parameter (indirect) is a preset's name, a spec (dict or Spec) or None (pass-through).
Egress is what the client sends, ingress what it receives (the box's inner side faces the
client). Changes go through the HTTP API (`shaped_link.api`, an HttpClient), served for the
test on 127.0.0.1 by `linkshaper http`. It needs root (namespaces); without it the test is
skipped, saying why. Everything it started is stopped and removed after the test, also when
the test fails.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pytest

from engine.kernel.processes import stop_process
from engine.kernel.python_path import python_module_command
from engine.lab.harness import EngineProcess, ping_times
from engine.lab.lab import CLIENT_IP, CLIENT_IP6, SERVER_IP, SERVER_IP6, Lab
from engine.model.presets import PRESETS
from engine.model.spec import PASS_THROUGH, Direction, Spec, loads_spec
from engine.model.stats import EngineStats
from engine.protocol.http_client import Directions, HttpClient

Side = Literal["client", "server"]
_labs = itertools.count()


def prerequisites() -> str | None:
    """Why a shaped link cannot be made here, or None."""
    if os.geteuid() != 0:
        return "linkshaper's shaped_link needs root (it creates network namespaces)"
    for tool in ("ip", "ethtool"):
        if shutil.which(tool) is None:
            return f"linkshaper's shaped_link needs {tool} (iproute2, ethtool)"
    return None


def spec_of(param: object) -> Spec:
    """A fixture parameter as a spec: a preset's name, a dict or Spec, or None."""
    if param is None:
        return PASS_THROUGH
    if isinstance(param, Spec):
        return param
    if isinstance(param, dict):
        return loads_spec(json.dumps(param))
    if isinstance(param, str):
        for preset in PRESETS:
            if preset.name == param:
                return preset.apply(PASS_THROUGH)
        names = ", ".join(repr(p.name) for p in PRESETS)
        raise pytest.UsageError(f"shaped_link: no preset named {param!r} (there are {names})")
    raise pytest.UsageError(f"shaped_link: a preset name, a spec or None, not {param!r}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ShapedLink:
    """client ⇄ engine ⇄ server; see the module's docstring."""

    client_ip = CLIENT_IP
    server_ip = SERVER_IP
    client_ip6 = CLIENT_IP6
    server_ip6 = SERVER_IP6

    def __init__(self, lab: Lab, engine: EngineProcess, api: HttpClient) -> None:
        self.lab = lab
        self.engine = engine
        self.api = api
        self._processes: list[subprocess.Popen[str]] = []

    def set(self, direction: Directions = "both", /, link: str | None = None,
            **fields: Any) -> Spec:  # fmt: skip
        """`set(latency="80ms")` both ways; `set("egress", rate="1mbit", loss=0.01)`."""
        return self.api.set(direction, link=link, **fields)

    def replace(self, spec: Spec | dict[str, Any]) -> Spec:
        return self.api.replace(spec)

    def preset(self, name: str) -> Spec:
        """Put a preset on the default link (flow rules stay)."""
        return self.api.replace(spec_of(name).model_copy(update={"flows": self.spec().flows}))

    def spec(self) -> Spec:
        return self.api.spec()

    def stats(self) -> EngineStats:
        return self.api.stats()

    def flush(self, direction: Direction | None = None) -> str:
        return self.api.flush(direction)

    def run(self, side: Side, *args: str, check: bool = False,
            timeout: float | None = 120.0) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run a command on one side and wait for it (its output as text)."""
        return subprocess.run(
            self.lab.in_ns(side, *args), capture_output=True, text=True, check=check,
            timeout=timeout,
        )  # fmt: skip

    def popen(self, side: Side, *args: str) -> subprocess.Popen[str]:
        """Start a command on one side; it is stopped after the test if still running."""
        process = subprocess.Popen(
            self.lab.in_ns(side, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._processes.append(process)
        return process

    def ping(self, count: int = 10, interval: float = 0.2) -> list[float]:
        """Round-trip times (ms) of `count` pings from the client to the server."""
        result = self.run(
            "client", "ping", "-n", "-c", str(count), "-i", str(interval), "-W", "5",
            self.server_ip,
        )  # fmt: skip
        return ping_times(result.stdout)

    def close(self) -> None:
        for process in self._processes:
            stop_process(process)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


@contextmanager
def shaped_link_lab(spec: Spec, workdir: Path) -> Iterator[ShapedLink]:
    """A lab, an engine with `spec` and its HTTP API; all gone on exit. Usable without pytest."""
    lab = Lab(f"lsf{os.getpid() % 100000}-{next(_labs)}")
    lab.up(offloads=True)
    engine: EngineProcess | None = None
    http: subprocess.Popen[bytes] | None = None
    link: ShapedLink | None = None
    try:
        engine = EngineProcess(lab, workdir, spec.model_dump(mode="json"))
        engine.wait_ready()
        port = _free_port()
        http = subprocess.Popen(
            [*python_module_command("engine.cli.main", "http"), "--control", engine.control,
             "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        api = HttpClient(f"http://127.0.0.1:{port}")
        api.wait_ready(15.0)
        link = ShapedLink(lab, engine, api)
        yield link
    finally:
        if link is not None:
            link.close()
        if http is not None:
            stop_process(http)
        if engine is not None:
            engine.close()
        lab.down()


@pytest.fixture
def shaped_link(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ShapedLink]:
    """A client and a server behind a linkshaper engine (see engine.testing.pytest_plugin).
    Parametrise it indirectly with preset names or specs."""
    spec = spec_of(getattr(request, "param", None))
    reason = prerequisites()
    if reason:
        pytest.skip(reason)
    with shaped_link_lab(spec, tmp_path) as link:
        yield link
