"""A reader that goes away (`linkshaper stats --json | head -1`) ends a command quietly, as a
pipeline's tools end, not with a traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_a_closed_pipe_ends_the_command_without_a_traceback() -> None:
    process = subprocess.Popen([str(BIN / "linkshaper"), "completion", "bash"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the command has written a byte (it takes a second to start)
    with process.stderr:
        stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 128 + signal.SIGPIPE
    assert stderr == ""
