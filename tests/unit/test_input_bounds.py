"""Inputs the kernel or a loop would take the wrong way: an interface name over 15 bytes
(the kernel's field would cut it to another interface's name) and a number option of `nan`
or `inf` (no comparison bounds it, so `stats --seconds nan` never ended). Each is refused
with one line naming where it came in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.daemon.config import EngineConfig
from engine.kernel.interface_state import interface_state
from engine.model.errors import LinkshaperError
from tests.cli_helpers import CLI, CLI_PATIENCE, ROOT

#: 19 bytes whose first 15 name an interface that exists: loopback's name, padded to 15.
LONG = "lo" + "x" * 13 + "NOPE"


def refusal(*command: str) -> tuple[int, str]:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          timeout=CLI_PATIENCE)  # fmt: skip
    return done.returncode, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""


def test_doctor_refuses_a_name_over_15_bytes() -> None:
    code, line = refusal(*CLI, "doctor", "--interfaces", f"lo,{LONG}")
    assert code != 0
    assert line.startswith("linkshaper: --interfaces: ") and "19 bytes" in line, line
    code, line = refusal(*CLI, "doctor", "lo", LONG)
    assert code != 0 and line.startswith("linkshaper: OUTER INNER: "), line


def test_run_refuses_a_name_over_15_bytes(tmp_path: Path) -> None:
    control = str(tmp_path / "control.sock")
    for args, field in (((LONG, "lo"), "OUTER"), (("lo", LONG), "INNER")):
        code, line = refusal(*CLI, "run", *args, "--control", control)
        assert code != 0 and line.startswith(f"linkshaper: {field}: "), line
        assert "at most 15" in line, line


def test_every_engine_refuses_it() -> None:
    """The TUI's hosted engine and users' own code build an EngineConfig, not a command line."""
    with pytest.raises(LinkshaperError, match=r"^INNER: .* at most 15"):
        EngineConfig("lo", LONG)


def test_the_kernel_edge_never_cuts_a_name() -> None:
    """`lo` padded past 15 bytes was looked up as its first 15: here, no interface at all."""
    assert interface_state("lo") == "up"
    assert interface_state("lo" + "\0" * 14) == "missing"
    assert interface_state(LONG) == "missing"


@pytest.mark.parametrize("value", ["nan", "inf", "NaN"])
@pytest.mark.parametrize(
    "command",
    [
        (*CLI, "stats", "--seconds"),
        (*CLI, "stats", "--interval"),
        (*CLI, "capture", "/dev/null", "--seconds"),
        (*CLI, "record", "/dev/null", "--seconds"),
        (sys.executable, "-m", "shaper_tui.cli", "--speed"),
    ],
)
def test_number_options_refuse_non_finite(command: tuple[str, ...], value: str) -> None:
    code, line = refusal(*command, value)
    assert code == 2
    assert f"argument {command[-1]}: a finite number, not '{value}'" in line, line
