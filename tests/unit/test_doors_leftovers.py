"""Issue 34's leftovers at the doors that need no lab: the TUI's recording against planted
links, a recording's file, the gate on a bursty loss. The lab ones are in
tests/lab/test_doors_leftovers.py."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import stat
import time
from pathlib import Path

import pytest

from engine.model.spec import Spec
from engine.timelines.reading import read_timeline
from shaper_tui.app import ShaperApp, create_app
from shaper_tui.engine_source import SocketSource
from tests.lab.test_doors_leftovers import DOORS_BASE, TAG, notifications
from tests.planted_links import (
    assert_untouched,
    needs_root,
    plant_links,
)

#: Seconds ahead whose recording names `nobody` plants: the TUI starts and `r` is pressed well
#: within them, even on a loaded machine.
PLANTED_SECONDS = 60


#: The same, for the test that takes every name of each second: 100 links a second.
TAKEN_SECONDS = 20


def no_engine_app(directory: Path) -> ShaperApp:
    """The TUI on a socket where no engine answers: recording needs none (the spec shown is
    recorded), and no lab is needed to check where the file goes."""
    return create_app(
        SocketSource(str(directory / "no-engine.sock")), tag=TAG, record_dir=str(directory)
    )


@needs_root
def test_the_tuis_recording_passes_over_links_planted_at_its_guessable_names(
    shared_dir: Path, victim: Path
) -> None:
    """`r` records to `linkshaper-DATE.jsonl` in --record-dir: `nobody` plants a link at every
    name of the next minute. The recording goes to a file made now (`-2`), never through one."""
    start = int(time.time())
    stamps = [time.strftime("linkshaper-%Y%m%d-%H%M%S", time.localtime(start + s))
              for s in range(-1, PLANTED_SECONDS)]  # fmt: skip
    plant_links([shared_dir / f"{stamp}.jsonl" for stamp in stamps], victim)
    app = no_engine_app(shared_dir)

    async def scenario() -> None:
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("r")
            assert app.recorder is not None, "not recording"
            assert time.time() < start + PLANTED_SECONDS, "r came after the planted names"
            await pilot.press("r")
            assert app.recorder is None

    asyncio.run(scenario())
    assert_untouched(victim)
    recording = app.last_recording
    assert recording is not None and recording.parent == shared_dir
    assert re.fullmatch(r"linkshaper-\d{8}-\d{6}-2\.jsonl", recording.name), recording
    status = recording.lstat()
    assert stat.S_ISREG(status.st_mode) and status.st_uid == 0
    assert [step.source for step in read_timeline(recording).steps] == ["tui-start"]
    assert all((shared_dir / f"{stamp}.jsonl").is_symlink() for stamp in stamps)


@needs_root
def test_the_tui_says_so_when_every_name_is_taken(shared_dir: Path, victim: Path) -> None:
    """Past RECORDING_NAME_TRIES names someone is planting them: no recording, one line why."""
    from engine.timelines.recorder import RECORDING_NAME_TRIES

    start = int(time.time())
    seconds = range(-1, TAKEN_SECONDS)  # the TUI starts and `r` is pressed within these
    stems = [time.strftime("linkshaper-%Y%m%d-%H%M%S", time.localtime(start + s)) for s in seconds]
    plant_links(
        [shared_dir / f"{stem}{suffix}.jsonl" for stem in stems
         for suffix in ["", *(f"-{n}" for n in range(2, RECORDING_NAME_TRIES + 1))]],
        victim,
    )  # fmt: skip
    app = no_engine_app(shared_dir)
    said = notifications(app)

    async def scenario() -> None:
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("r")
            assert time.time() < start + len(seconds) - 1, "r came after the planted names"
            assert app.recorder is None

    asyncio.run(scenario())
    assert_untouched(victim)
    assert len(said) == 1 and "\n" not in said[0], said
    assert said[0].startswith(f"Cannot record to {shared_dir}/linkshaper-"), said
    assert said[0].endswith(f"-{RECORDING_NAME_TRIES}.jsonl: taken, as are the "
                            f"{RECORDING_NAME_TRIES - 1} names before it"), said  # fmt: skip


def test_a_recording_is_written_only_to_a_regular_file_of_one_name(tmp_path: Path) -> None:
    """What `open_recording` takes: a new file, or a regular file of ours, emptied. Not a
    FIFO (open would wait for a reader for ever), nor a file with another hard link (writing
    it writes the other name's file: a link `nobody` made, where hard links are not
    protected)."""
    from engine.timelines.recorder import open_recording

    existing = tmp_path / "existing.jsonl"
    existing.write_bytes(b"old contents, longer than what comes\n")
    with open_recording(existing) as file:
        file.write(b"new\n")
    assert existing.read_bytes() == b"new\n"
    with open_recording(tmp_path / "fresh.jsonl") as file:
        file.write(b"x\n")
    assert stat.S_IMODE((tmp_path / "fresh.jsonl").stat().st_mode) == 0o600 & ~current_umask()

    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file") as raised:
        open_recording(fifo)
    assert raised.value.filename == str(fifo)

    other = tmp_path / "other"
    other.write_bytes(b"another name's\n")
    os.link(other, tmp_path / "hard.jsonl")
    with pytest.raises(OSError, match="other hard links"):
        open_recording(tmp_path / "hard.jsonl")
    assert other.read_bytes() == b"another name's\n"

    with pytest.raises(FileExistsError):
        open_recording(existing, new_file=True)
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OSError, match="symbolic link") as linked:
        open_recording(tmp_path / "link.jsonl")
    assert linked.value.errno == errno.ELOOP and not (tmp_path / "nowhere").exists()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_bursty_loss_past_all_is_the_gates_to_refuse() -> None:
    """In bursty mode the loss control maps a mean loss to a Gilbert-Elliott chain; a mean past
    100 % has none, and goes to the gate as the loss it is (it was made 99 % silently)."""
    from shaper_tui.link_edits import changes_for

    spec = Spec.model_validate(DOORS_BASE)
    assert changes_for("egress", "loss", 1.5, spec.default_link.egress) == {"egress.loss": 1.5}
