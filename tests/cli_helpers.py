"""Running `linkshaper` as a user does, for the tests of its doors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "engine.cli.main"]
#: How long one command may take: far above what it needs.
CLI_PATIENCE = 15.0


def set_refusal(control: str, assignment: str) -> str | None:
    """`linkshaper set ASSIGNMENT` on the engine at `control`: None if it went in force, else
    its one line of refusal (without the `linkshaper: ` it starts with)."""
    done = subprocess.run(
        [*CLI, "set", "--control", control, assignment],
        cwd=ROOT, capture_output=True, text=True, timeout=CLI_PATIENCE,
    )  # fmt: skip
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("linkshaper: "), done.stderr
    return lines[0].removeprefix("linkshaper: ")
