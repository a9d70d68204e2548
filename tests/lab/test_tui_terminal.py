"""End to end in a real terminal: tmux runs `tui` against an engine in the lab, keys go in
through tmux, and ping through the lab shows that the link changed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from engine.lab.harness import EngineProcess, assert_delay, ping_rtts
from engine.lab.lab import Lab
from engine.namespaces.commands import network_namespaces
from engine.protocol.client import ControlClient
from tests import ROOT

pytestmark = pytest.mark.lab

StartEngine = Callable[..., EngineProcess]


class Tmux:
    """A private tmux server (its own socket), killed at the end whatever happened."""

    def __init__(self) -> None:
        self.socket = f"linkshaper-test-{os.getpid()}"

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        return result.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "tui")

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never showed; the screen was:\n{self.screen()}")

    def close(self) -> None:
        self("kill-server")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (make install)")
    terminal = Tmux()
    try:
        yield terminal
    finally:
        terminal.close()


def test_keys_in_a_real_terminal_change_the_link(
    start_engine: StartEngine, lab: Lab, tmux: Tmux
) -> None:
    engine = start_engine({"ingress": {}, "egress": {}})
    command = (
        f"cd {ROOT} && TERM=xterm exec {sys.executable} -m shaper_tui --control {engine.control}"
    )
    tmux("new-session", "-d", "-s", "tui", "-x", "100", "-y", "32", command)
    tmux.wait_for("attached")
    # Focus starts on the download rate: down to Latency (rate, loss, loss mode, latency).
    tmux("send-keys", "-t", "tui", "Down", "Down", "Down", "Enter")
    tmux.wait_for("Latency (now")
    tmux("send-keys", "-t", "tui", "-l", "60ms")
    tmux("send-keys", "-t", "tui", "Enter")
    deadline = time.monotonic() + 5
    with engine.client() as client:
        while client.get_spec().default_link.ingress.latency != 60:
            assert time.monotonic() < deadline, "the engine never got the new latency"
            time.sleep(0.05)
    assert_delay(ping_rtts(lab, count=12), 60.0)  # 60 ms on the way in
    tmux.wait_for("60 ms")
    # q quits the UI but leaves the engine it attached to running.
    tmux("send-keys", "-t", "tui", "q")
    deadline = time.monotonic() + 5
    while "tui" in tmux("list-sessions"):
        assert time.monotonic() < deadline, "tui did not quit"
        time.sleep(0.1)
    assert engine.process.poll() is None
    with ControlClient(engine.control) as client:
        assert client.get_spec().default_link.ingress.latency == 60


def _demo_processes(root_pid: int) -> list[psutil.Process]:
    """The demo's `tui` and everything it started (the engine, iperf3), while they live."""
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cmdline(process: psutil.Process) -> list[str]:
    """A process's command line, or none if it ended meanwhile (the demo restarts clients)."""
    try:
        return process.cmdline()
    except psutil.NoSuchProcess:
        return []


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("how", ["hang-up", "terminate"])
def test_the_demo_tears_its_lab_down_when_its_terminal_goes_or_it_is_told_to_stop(
    tmux: Tmux, how: str
) -> None:
    """Killing the terminal (tmux kill-server: SIGHUP to `tui`) or SIGTERM must leave what
    `q` leaves: no lab namespace, no engine, no iperf3, no temp folder."""
    prefix = f"lsq{os.getpid() % 10000}"
    lab = Lab(prefix)
    command = (
        f"cd {ROOT} && TERM=xterm exec {sys.executable} -m shaper_tui --demo --prefix {prefix} "
        "--demo-seconds 60"
    )
    try:
        tmux("new-session", "-d", "-s", "tui", "-x", "100", "-y", "32", command)
        tmux.wait_for("attached", timeout=60)
        pid = int(tmux("display-message", "-p", "-t", "tui", "#{pane_pid}").strip())
        started = _demo_processes(pid)
        assert any("engine.cli.main" in " ".join(_cmdline(p)) for p in started), started
        workdirs = {
            word.rsplit("/", 1)[0]
            for p in started
            for word in _cmdline(p)
            if "linkshaper-demo-" in word
        }
        assert workdirs and set(lab.namespaces) <= network_namespaces()
        if how == "hang-up":
            tmux("kill-server")
        else:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            alive = [p for p in started if _alive(p)]
            if not alive and not set(lab.namespaces) & network_namespaces():
                break
            time.sleep(0.2)
        assert not set(lab.namespaces) & network_namespaces()
        assert not [p for p in started if _alive(p)]
        assert not [path for path in workdirs if os.path.exists(path)]
    finally:
        lab.down()
