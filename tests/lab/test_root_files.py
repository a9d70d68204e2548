"""Files the engine writes as root, with the real engine in the lab (root): a PATCH, the key
file, a capture, the hosted engine's log. The planting user and the rest are in
tests/unit/test_root_files.py."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from engine.daemon.hosted import start_hosted_engine
from engine.lab.harness import EngineProcess
from engine.lab.lab import INNER, OUTER, Lab
from engine.model.spec import Spec
from engine.protocol.client import ControlClient, wait_for_engine
from engine.protocol.control import key_path
from engine.protocol.messages import CaptureToFile, Error
from tests.planted_links import (
    assert_untouched,
    needs_root,
    plant_link,
)
from tests.unit.test_root_files import PATIENCE, saved_latency, wait_until


@pytest.mark.lab
@needs_root
def test_a_patch_does_not_write_through_a_link_at_the_old_temporary_name(
    lab: Lab, shared_dir: Path, victim: Path
) -> None:
    """The attack as found: the temporary name was `.spec.json.PID.tmp`, the PID in `GET /info`.
    Then a change and a stop right after another: the file holds the latest."""
    engine = EngineProcess(lab, shared_dir, Spec(), "spec.json")
    try:
        engine.wait_ready()
        with engine.client() as client:
            pid = client.info().supervisor_pid
            plant_link(shared_dir / f".spec.json.{pid}.tmp", victim)
            client.patch({"egress.latency": 41}, source="test")
            assert_untouched(victim)
            wait_until(lambda: saved_latency(engine.spec_path) == 41, "the change saved")
            status = engine.spec_path.lstat()
            assert stat.S_ISREG(status.st_mode) and status.st_uid == 0
            client.patch({"egress.latency": 42}, source="test")
            client.patch({"egress.latency": 43}, source="test")  # within the write interval
        engine.close()
        assert engine.process.returncode == 0, engine.stderr()
        assert saved_latency(engine.spec_path) == 43  # written at the stop, not lost
        assert_untouched(victim)
        left = {p.name for p in shared_dir.iterdir()} - {"engine.stderr", f".spec.json.{pid}.tmp"}
        assert left == {"spec.json"}, left  # no temporary file of ours left behind
    finally:
        engine.close()


@pytest.mark.lab
@needs_root
def test_the_key_file_replaces_a_link_planted_at_its_name(
    lab: Lab, shared_dir: Path, victim: Path
) -> None:
    control = shared_dir / "control.sock"
    plant_link(key_path(str(control)), victim)
    engine = EngineProcess(lab, shared_dir, Spec(), "spec.json")
    try:
        engine.wait_ready()
        assert_untouched(victim)
        key = key_path(str(control)).lstat()
        assert stat.S_ISREG(key.st_mode) and key.st_uid == 0
        assert stat.S_IMODE(key.st_mode) == 0o600
    finally:
        engine.close()


@pytest.mark.lab
@needs_root
def test_a_capture_to_a_file_does_not_write_through_a_link(
    lab: Lab, shared_dir: Path, victim: Path
) -> None:
    """The TUI names the file by the second (`linkshaper-DATE.pcapng`): guessable. The engine
    writes only a file it makes, and says why not."""
    engine = EngineProcess(lab, shared_dir, Spec(), "spec.json")
    try:
        engine.wait_ready()
        path = shared_dir / "linkshaper-20250101-000000.pcapng"
        plant_link(path, victim)
        with engine.client() as client:
            reply = client.request(CaptureToFile(path=str(path)))
        assert isinstance(reply, Error), reply
        assert reply.message.startswith(f"path: {path}: "), reply.message
        assert_untouched(victim)
        assert path.is_symlink()
    finally:
        engine.close()


@pytest.mark.lab
@needs_root
def test_the_hosted_engines_log_is_not_at_a_name_anyone_can_plant(lab: Lab, victim: Path) -> None:
    """The TUI's own engine logged to `/tmp/linkshaper-hosted-PID.log` (the TUI's PID): now to
    a file in a private directory of its own, shown as before."""
    old_name = Path(f"/tmp/linkshaper-hosted-{os.getpid()}.log")
    if old_name.is_symlink() or old_name.exists():
        old_name.unlink()
    plant_link(old_name, victim)
    engine = None
    try:
        engine = start_hosted_engine(OUTER, INNER, Spec(), netns=lab.ns("box"))
        assert engine.control_path is not None
        wait_for_engine(engine.control_path, PATIENCE, alive=engine.process.is_alive)
        with ControlClient(engine.control_path) as client:
            client.patch({"egress.latency": 12}, source="test")  # a line in its log
        directory = Path(engine.log_path).parent
        status = directory.lstat()
        assert stat.S_ISDIR(status.st_mode) and status.st_uid == 0
        assert stat.S_IMODE(status.st_mode) == 0o700
        deadline = time.monotonic() + PATIENCE
        while "spec applied (from test)" not in Path(engine.log_path).read_text():
            assert time.monotonic() < deadline, Path(engine.log_path).read_text()
            time.sleep(0.05)
        engine.stop()
        assert_untouched(victim)
        # A clean stop leaves nothing behind (19 such directories were left in /tmp).
        assert not directory.exists(), sorted(os.listdir(directory))
    finally:
        if engine is not None:
            engine.stop()
            if Path(engine.log_path).parent != Path("/tmp"):
                shutil.rmtree(Path(engine.log_path).parent, ignore_errors=True)
        old_name.unlink()
