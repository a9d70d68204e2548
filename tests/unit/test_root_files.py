"""Files the engine writes as root, against a user who can write the directory they are in
(issue 34, item 3), and the spec file under a flood of changes (item 7).

The user is `nobody` for real (`setpriv`): it plants a symbolic link, at a name the engine used
to write through, to a root-owned 0600 file; the engine then writes as it does (a PATCH, its
start, a capture, the TUI's engine), and the file must be as it was. This machine follows links
in sticky directories (fs.protected_symlinks=0), as some do; each test makes its own shared
1777 directory, so the sysctl does not matter to what is checked.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

from engine.daemon.coalescing import SPEC_LOG_INTERVAL, SPEC_WRITE_INTERVAL
from engine.daemon.config import EngineConfig
from engine.daemon.supervisor import Supervisor
from engine.files.regular_files import NEW_FILE_MODE, write_atomically
from engine.files.spec_files import read_spec
from engine.protocol.control import key_path
from engine.protocol.messages import PatchSpec, SpecReply
from tests.planted_links import (
    NOBODY,
    assert_untouched,
    needs_root,
    plant_link,
)

#: How long a change may take to reach the file, a process to stop: far above what they need.
PATIENCE = 15.0
#: The burst: this many changes at most, for at most this long.
BURST_CHANGES = 3000
BURST_SECONDS = 1.5


def wait_until(condition: object, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def saved_latency(path: Path) -> object:
    return json.loads(path.read_text())["default_link"]["egress"]["latency"]


# --- write_atomically: what every writer of spec and profile files goes through -----------------


@needs_root
def test_a_link_at_the_target_is_replaced_and_does_not_choose_the_mode(
    shared_dir: Path, victim: Path
) -> None:
    """The rename replaces the link itself; the mode is not the linked file's (0600 here, it
    could as well be 0666)."""
    target = shared_dir / "spec.json"
    plant_link(target, victim)
    write_atomically(str(target), b"new\n")
    assert_untouched(victim)
    status = target.lstat()
    assert stat.S_ISREG(status.st_mode) and status.st_uid == 0
    assert stat.S_IMODE(status.st_mode) == NEW_FILE_MODE
    assert target.read_bytes() == b"new\n"


@needs_root
def test_a_file_someone_else_planted_at_the_target_does_not_choose_the_mode(
    shared_dir: Path,
) -> None:
    """A world-writable file of nobody's at the name: root's replacement is not world-writable
    (root would read back, on SIGHUP, what anyone wrote)."""
    target = shared_dir / "spec.json"
    subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         "sh", "-c", f"umask 0; echo planted > {target}"],
        check=True, timeout=PATIENCE,
    )  # fmt: skip
    assert stat.S_IMODE(target.stat().st_mode) == 0o666
    write_atomically(str(target), b"new\n")
    status = target.stat()
    assert (stat.S_IMODE(status.st_mode), status.st_uid) == (NEW_FILE_MODE, 0)


def test_a_regular_file_of_ours_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "spec.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_atomically(str(target), b"new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["spec.json"]


# --- a real engine in a shared directory -----------------------------------------------------


# --- the spec file under a flood of changes (item 7) -----------------------------------------


def supervisor_on(path: Path) -> Supervisor:
    """A real supervisor without workers (as tests/unit/test_persistence.py): changes are applied,
    published, logged and saved as in an engine."""
    path.write_text('{"default_link": {"egress": {"latency": 5}}}\n')
    return Supervisor(EngineConfig("outer", "inner", str(path)), read_spec(str(path)))


def patch(supervisor: Supervisor, latency: int) -> None:
    reply = supervisor.handle(PatchSpec(changes={"egress.latency": latency}, source="replay"))
    assert isinstance(reply, SpecReply), reply


def test_a_burst_of_changes_writes_the_spec_file_a_few_times_a_second_the_latest_last(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As a 1 ms timeline at speed 1000 makes them (~480 a second): before, each change was one
    fsynced write and one log line. Now at most one write per SPEC_WRITE_INTERVAL (+2: the
    first at once, the last after the burst) and one line per SPEC_LOG_INTERVAL (+2), and the
    lines still account for every change."""
    path = tmp_path / "spec.json"
    supervisor = supervisor_on(path)
    with caplog.at_level(logging.INFO, logger="linkshaper"):
        start = time.monotonic()
        changes = 0
        while changes < BURST_CHANGES and time.monotonic() - start < BURST_SECONDS:
            changes += 1
            patch(supervisor, 100 + changes % 1000)  # never the 5 of the start
        elapsed = time.monotonic() - start
        latest = 100 + changes % 1000
        wait_until(lambda: saved_latency(path) == latest, "the latest change saved")
        time.sleep(SPEC_WRITE_INTERVAL)  # a write after the latest would count now
        writes = supervisor.spec_file_writes
        assert saved_latency(path) == latest
        supervisor.shutdown()
    assert changes >= 100, f"only {changes} changes in {elapsed:.2f} s: no burst"
    assert 2 <= writes <= elapsed / SPEC_WRITE_INTERVAL + 2, (writes, changes, elapsed)
    lines = [r.getMessage() for r in caplog.records if "spec applied" in r.getMessage()]
    assert len(lines) <= elapsed / SPEC_LOG_INTERVAL + 2, (len(lines), changes)
    counted = sum(
        int(m.group(1)) if (m := re.search(r"applied (\d+) times", line)) else 1 for line in lines
    )
    assert counted == changes, lines


def test_a_stop_right_after_a_change_leaves_it_in_the_file(tmp_path: Path) -> None:
    """The second change comes within the write interval: it is written at the stop at the
    latest, so a restart starts with it. (Held before too, when each change was written at
    once: this guards the coalescing.)"""
    path = tmp_path / "spec.json"
    supervisor = supervisor_on(path)
    patch(supervisor, 31)
    patch(supervisor, 32)
    supervisor.shutdown()
    assert saved_latency(path) == 32
    assert [p.name for p in tmp_path.iterdir()] == ["spec.json"]


def test_a_sighup_is_not_undone_by_a_write_still_pending(tmp_path: Path) -> None:
    """A burst, then an edit of the file and a SIGHUP before the burst's last write: the file
    keeps the edit (a write pending is older than what the file says)."""
    path = tmp_path / "spec.json"
    supervisor = supervisor_on(path)
    patch(supervisor, 31)
    patch(supervisor, 32)  # pending: within the interval
    edited = '{"default_link": {"egress": {"latency": 77}}}\n'
    path.write_text(edited)
    assert supervisor.reload()
    time.sleep(SPEC_WRITE_INTERVAL * 2)  # past when the pending write was due
    supervisor.shutdown()
    assert path.read_text() == edited
    assert supervisor.spec.default_link.egress.latency == 77


def test_the_error_for_a_link_names_it(tmp_path: Path) -> None:
    """`linkshaper capture FILE` overwrites a file as before, but not through a link."""
    from engine.captures.pcapng import CaptureWriter

    link = tmp_path / "fates.pcapng"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError) as raised:
        CaptureWriter(str(link))
    assert raised.value.errno == errno.ELOOP
    assert "symbolic link" in str(raised.value)
    assert not (tmp_path / "elsewhere").exists()


@needs_root
def test_a_client_does_not_read_its_key_through_a_link(shared_dir: Path, victim: Path) -> None:
    """`linkshaper get --control /shared/x.sock` as root: a link at `x.key` is not the
    engine's, and is said so, not read (nor does the client crash on what it would read)."""
    from engine.protocol.control import ControlError, connect

    control = shared_dir / "control.sock"
    plant_link(key_path(str(control)), victim)
    with pytest.raises(ControlError, match="symbolic link, not followed"):
        connect(str(control))


@needs_root
def test_a_missing_spec_file_is_not_created_through_a_dangling_link(
    shared_dir: Path, tmp_path: Path
) -> None:
    """`linkshaper run OUTER INNER /shared/spec.json` makes the example spec if the file is
    missing: not where a link someone planted at the name points (root would create any
    file it names)."""
    from engine.cli.serve import _first_spec
    from engine.model.spec import SpecError

    elsewhere = tmp_path / "made-by-root"
    spec_path = shared_dir / "spec.json"
    plant_link(spec_path, elsewhere)
    with pytest.raises(SpecError):
        _first_spec(str(spec_path))
    assert not elsewhere.exists()
    spec_path.unlink()
    assert _first_spec(str(spec_path)) is not None  # missing: made, as before
    status = spec_path.lstat()
    assert stat.S_ISREG(status.st_mode) and stat.S_IMODE(status.st_mode) == NEW_FILE_MODE
