"""A directory someone else can write to, with our package and the standard library's
`multiprocessing` planted in it, as the working directory of root's `linkshaper doctor`,
`linkshaper run` and a `python -m engine...` child we build: the planted code must never run
(its marker file stays absent) and each command does its work all the same."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.kernel.processes import stop_process
from engine.kernel.python_path import python_module_command
from engine.lab.lab import INNER, OUTER, Lab
from engine.model.spec import PASS_THROUGH
from engine.protocol.client import wait_for_engine
from engine.protocol.control import ControlError

pytestmark = [pytest.mark.lab, pytest.mark.shared_lab]

LINKSHAPER = str(Path(sys.executable).parent / "linkshaper")


def plant(directory: Path, marker: Path) -> None:
    """`engine/` (every module a child of ours starts with) and `multiprocessing/` (what a
    spawn child imports first), each writing MARKER when imported."""
    payload = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for package in ("engine", "engine/doctor", "engine/cli", "engine/lab", "multiprocessing"):
        (directory / package).mkdir(parents=True, exist_ok=True)
        (directory / package / "__init__.py").write_text(payload)
    for module in ("engine/doctor/tc_probe.py", "engine/cli/main.py", "engine/__main__.py"):
        (directory / module).write_text(payload)
    (directory / "json.py").write_text(payload)


def serve_until_ready(command: list[str], cwd: Path, control: str, log: Path) -> None:
    """Start the engine in CWD, wait until its workers report (30 s at most), stop it."""
    with open(log, "wb") as stderr:
        engine = subprocess.Popen(command, cwd=cwd, stderr=stderr)
        try:
            wait_for_engine(control, 30.0, alive=lambda: engine.poll() is None)
        except ControlError as exc:
            pytest.fail(f"{exc}: {log.read_text(errors='replace')}")
        finally:
            stop_process(engine)


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    directory = tmp_path / "shared"
    marker = tmp_path / "PWNED"
    plant(directory, marker)
    return directory, marker


def test_doctor_in_a_hostile_directory(hostile: tuple[Path, Path]) -> None:
    directory, marker = hostile
    done = subprocess.run([LINKSHAPER, "doctor"], cwd=directory, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert not marker.exists(), marker.read_text()
    assert "qdisc_netem" in done.stdout, done.stdout + done.stderr


def test_module_child_in_a_hostile_directory(hostile: tuple[Path, Path]) -> None:
    directory, marker = hostile
    command = python_module_command("engine.cli.main", "--version")
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=60)
    assert not marker.exists(), marker.read_text()
    assert done.returncode == 0 and "linkshaper" in done.stdout, done.stdout + done.stderr


def test_run_and_its_workers_in_a_hostile_directory(
    lab: Lab, hostile: tuple[Path, Path], tmp_path: Path
) -> None:
    """`linkshaper run` itself (the console script) and the engine command every environment
    builds: their workers are multiprocessing spawn children, `python -c` in this cwd."""
    directory, marker = hostile
    spec = tmp_path / "spec.json"
    spec.write_text(PASS_THROUGH.model_dump_json())
    for n, shell_run in enumerate((True, False)):
        control = str(tmp_path / f"control{n}.sock")
        command = (
            lab.in_ns("box", LINKSHAPER, "run", OUTER, INNER, str(spec), "--control", control)
            if shell_run
            else lab.engine_command(str(spec), control)
        )
        serve_until_ready(command, directory, control, tmp_path / f"engine{n}.stderr")
        assert not marker.exists(), marker.read_text()
