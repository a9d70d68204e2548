"""The container's entrypoint asked for help says what it does and takes nothing over (before,
any argument but `sidecar` was the application's command: `--help` on a host moved the host's
addresses and routes onto a veth pair)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_the_entrypoint_asked_for_help_only_answers(flag: str) -> None:
    # As root, in a network namespace of its own: were it to take over, it would take that over.
    alone = ["unshare", "--net"] if os.geteuid() == 0 else []
    done = subprocess.run(
        [*alone, sys.executable, "-m", "engine.deploy.container", flag],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: IMAGE [COMMAND...] | IMAGE sidecar"), done.stdout
    assert "synthetic network" not in done.stderr, done.stderr
