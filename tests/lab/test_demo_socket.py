"""Where the demo's control socket is, for `linkshaper get/stats` beside the TUI: named by
the demo's prefix, and printed by `tui --demo` (there again once the UI ends). A real
terminal (tmux), a real demo lab, a real `linkshaper stats` on the printed path."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

from engine.lab.lab import Lab
from tests import ROOT
from tests.lab.test_tui_terminal import Tmux, tmux

pytestmark = pytest.mark.lab
__all__ = ["tmux"]  # the fixture, used by name


def test_the_demo_says_where_its_control_socket_is(tmux: Tmux) -> None:
    prefix = f"fb{os.getpid() % 10000}"
    lab = Lab(prefix)
    command = (
        f"cd {ROOT} && TERM=xterm {sys.executable} -m shaper_tui --demo --prefix {prefix} "
        "--demo-seconds 60; sleep 30"  # the shell stays, so the screen can be read after
    )
    try:
        tmux("new-session", "-d", "-s", "tui", "-x", "120", "-y", "40", command)
        tmux.wait_for("attached", timeout=60)
        found = glob.glob(f"/tmp/linkshaper-demo-{prefix}-*/control.sock")
        assert len(found) == 1, found
        stats = subprocess.run(
            [sys.executable, "-m", "engine", "stats", "--once", "--control", found[0]],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert stats.returncode == 0, stats.stderr
        tmux("send-keys", "-t", "tui", "q")
        screen = tmux.wait_for("Demo lab removed", timeout=30)
        assert f"Control socket: {found[0]}" in screen, screen
        assert f"linkshaper stats --control {found[0]}" in screen, screen
    finally:
        lab.down()
