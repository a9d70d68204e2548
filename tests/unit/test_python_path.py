"""Sealing children's `sys.path` (tests/lab/test_planted_modules.py shows the attack) stays
ours: the commands the user names (`lab exec`, `ns exec`, a container's application) get the
environment as the user gave it, or their `python script.py` would miss its own modules."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli_helpers import CLI_PATIENCE, ROOT

SHOW = (
    "from engine.kernel.python_path import seal_python_path, user_environment\n"
    "import os\n"
    "seal_python_path()\n"
    "print(os.environ.get('PYTHONSAFEPATH'), user_environment().get('PYTHONSAFEPATH'))\n"
)


@pytest.mark.parametrize(("given", "seen"), [(None, "1 None"), ("", "1 "), ("x", "1 x")])
def test_the_users_commands_get_the_users_value(given: str | None, seen: str) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    if given is not None:
        environment["PYTHONSAFEPATH"] = given
    done = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env=environment,
        capture_output=True, text=True, timeout=CLI_PATIENCE, check=True,
    )  # fmt: skip
    assert done.stdout.rstrip("\n") == seen
