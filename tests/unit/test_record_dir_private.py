"""The TUI's recordings directory is private or refused (the TUI often runs as root): a link
planted in its place is not followed, a directory of another user's or writable by others is
not used, one made is 0700, and recordings and captures are made 0600 whatever the umask."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.captures.pcapng import open_capture_file
from engine.timelines.recorder import open_new_recording
from shaper_tui.app import create_app
from shaper_tui.record_dir import RecordDirError, private_record_dir
from tests.cli_helpers import CLI_PATIENCE, ROOT
from tests.scripted_engine import ScriptedEngine
from tests.tui_helpers import record_notifications, wait_until
from tests.unit.test_tui_snapshots import SPEC

NOBODY = 65534


@pytest.fixture
def no_umask() -> Iterator[None]:
    """Umask 0: the modes seen are the ones asked for, not the umask's doing."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def press_r(record_dir: Path) -> list[str]:
    """The TUI's notifications after `r` with RECORD_DIR."""
    app = create_app(ScriptedEngine(SPEC, 4), tag="tui:test", record_dir=str(record_dir))
    said: list[str] = []

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            record_notifications(app, said)
            await wait_until(pilot, lambda: app.stats_seen > 0, 10, "the scripted stats")
            await pilot.press("r")
            await pilot.pause()
            if app.recorder is not None:
                await pilot.press("r")

    asyncio.run(scenario())
    return said


def test_r_does_not_follow_a_link_planted_as_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "victims"
    target.mkdir(mode=0o700)
    link = tmp_path / "recordings"
    link.symlink_to(target)
    said = press_r(link)
    assert list(target.iterdir()) == []
    assert f"--record-dir {link}: a symbolic link, not followed: name the directory itself" in said


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (0o1777, "world-writable (a shared directory): use a private directory (0700)"),
        (0o777, "world-writable (a shared directory): use a private directory (0700)"),
        (0o770, "group-writable: use a private directory (0700)"),
    ],
)
def test_a_directory_others_can_write_is_refused(
    tmp_path: Path, no_umask: None, mode: int, reason: str
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=mode)
    with pytest.raises(RecordDirError) as refused:
        private_record_dir(shared)
    assert str(refused.value) == f"--record-dir {shared}: {reason}"
    assert any(line == f"--record-dir {shared}: {reason}" for line in press_r(shared))
    assert list(shared.iterdir()) == []


def test_tui_refuses_a_sticky_tmp_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shaper_tui.cli", "--record-dir", "/tmp", "--control", "/none"],
        cwd=ROOT, capture_output=True, text=True, timeout=CLI_PATIENCE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "tui: --record-dir /tmp: world-writable (a shared directory): use a private directory "
        "(0700)"
    ], done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory another user's needs root")
def test_another_users_directory_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(RecordDirError, match=f"owned by uid {NOBODY}, not you$"):
        private_record_dir(theirs)


def test_the_directory_is_made_0700_with_its_parents(tmp_path: Path, no_umask: None) -> None:
    made = private_record_dir(tmp_path / "data" / "linkshaper" / "recordings")
    assert made == tmp_path / "data" / "linkshaper" / "recordings"
    assert os.stat(made).st_mode & 0o777 == 0o700


def test_recordings_and_captures_are_made_0600(tmp_path: Path, no_umask: None) -> None:
    path, file = open_new_recording(tmp_path, "stem")
    file.close()
    fd = open_capture_file(str(tmp_path / "capture.pcapng"), new_file=True)
    os.close(fd)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "capture.pcapng").st_mode & 0o777 == 0o600
