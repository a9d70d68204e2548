"""The shape of the code is checked by import-linter (the contracts in pyproject.toml, run by
`make lint`). What a static check cannot see is what a running engine loads: this test imports
the daemon, the command line and the lab's demo in a fresh interpreter and finds neither UI
toolkit among its modules (a third-party package could pull one in)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UI_TOOLKITS = ("textual", "rich")


def test_engine_runs_without_textual_or_rich_loaded() -> None:
    code = (
        "import sys, engine.cli.main, engine.daemon.supervisor, engine.daemon.worker,"
        " engine.lab.demo, engine.daemon.hosted, engine.model.presets,"
        " engine.model.rates, engine.web.api\n"
        f"print([m for m in sys.modules if m.split('.')[0] in {UI_TOOLKITS!r}])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "[]"
