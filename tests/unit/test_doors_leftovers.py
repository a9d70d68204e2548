"""Issue 34's leftovers at the doors that need no lab: the TUI's recording against planted
links, a recording's file, the gate on a bursty loss. The lab ones are in
tests/lab/test_doors_leftovers.py."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import time
from pathlib import Path

import pytest

from engine.model.spec import Spec
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
def test_the_tui_refuses_a_shared_directory_with_links_planted_at_its_names(
    shared_dir: Path, victim: Path
) -> None:
    """`r` records to `linkshaper-DATE.jsonl` in --record-dir: `nobody` plants a link at every
    name of the next minute in a directory anyone may write. The TUI refuses the directory
    itself (one line, no recording), so no name in it is tried and nothing is written."""
    start = int(time.time())
    stamps = [time.strftime("linkshaper-%Y%m%d-%H%M%S", time.localtime(start + s))
              for s in range(-1, PLANTED_SECONDS)]  # fmt: skip
    plant_links([shared_dir / f"{stamp}.jsonl" for stamp in stamps], victim)
    app = no_engine_app(shared_dir)
    said = notifications(app)

    async def scenario() -> None:
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("r")
            assert app.recorder is None, "recording"

    asyncio.run(scenario())
    assert_untouched(victim)
    assert said == [f"--record-dir {shared_dir}: world-writable (a shared directory): use a "
                    "private directory (0700)"], said  # fmt: skip
    assert all((shared_dir / f"{stamp}.jsonl").is_symlink() for stamp in stamps)


@needs_root
def test_a_new_recording_passes_over_links_planted_at_its_names(
    shared_dir: Path, victim: Path
) -> None:
    """What `linkshaper record` and the HTTP API rely on where the directory is shared: a link
    at a name is passed over (`-2`), never followed; past RECORDING_NAME_TRIES names someone is
    planting them: one line why."""
    from engine.timelines.recorder import RECORDING_NAME_TRIES, open_new_recording

    plant_links([shared_dir / "stem.jsonl"], victim)
    path, file = open_new_recording(shared_dir, "stem")
    file.close()
    assert path.name == "stem-2.jsonl" and stat.S_ISREG(path.lstat().st_mode)
    plant_links([shared_dir / f"full-{n}.jsonl" for n in range(2, RECORDING_NAME_TRIES + 1)]
                + [shared_dir / "full.jsonl"], victim)  # fmt: skip
    with pytest.raises(OSError, match=f"taken, as are the {RECORDING_NAME_TRIES - 1} names"):
        open_new_recording(shared_dir, "full")
    assert_untouched(victim)


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
