"""Trace files and capture files in directories others may write (issue 34, the attacker pass
after the first fixes): a link swapped in after a trace was admitted is never read, a capture
file is never anything but a new file of ours, and `replay --check` says what it checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.files.trace_files import read_trace
from engine.model.trace import TraceError, TraceFile
from tests import ROOT
from tests.planted_links import (
    shared_dir,
    victim,
)

__all__ = ["shared_dir", "victim"]  # fixtures, used by name


# --- item 1: a trace admitted from the network is read once, from the file admitted ----------


def test_a_trace_is_read_from_the_file_admitted_or_not_at_all(tmp_path: Path) -> None:
    """Without an engine: the reader after the gate names the file it admitted; a file put
    in its place (a link, a rewrite) is refused and not read; a path walked without links
    refuses a link anywhere on it."""
    trace = tmp_path / "n.trace"
    trace.write_text("5\n")
    parsed, admitted = read_trace(str(trace), follow_links=False)
    assert parsed.times_ms == (5,) and not admitted.follow_links
    other = tmp_path / "other"
    other.write_text("1000\n")
    trace.unlink()
    trace.symlink_to(other)
    with pytest.raises(TraceError, match="symbolic link"):
        read_trace(str(trace), follow_links=False)
    linked_dir = tmp_path / "linked"
    linked_dir.symlink_to(tmp_path)
    with pytest.raises(TraceError, match="symbolic link"):
        read_trace(str(linked_dir / "other"), follow_links=False)
    # What was admitted is known without the disk (cached by the very file), and the file
    # that replaced it is not taken for it.
    assert read_trace(str(trace), expected=admitted)[0].times_ms == (5,)
    trace.unlink()
    trace.write_text("7\n")  # a file of its own at the name: not the one admitted
    stranger = TraceFile.model_validate({**admitted.model_dump(), "inode": admitted.inode + 1})
    for expected in (stranger, stranger.model_copy(update={"follow_links": True})):
        with pytest.raises(TraceError, match="not the file admitted"):
            read_trace(str(trace), expected=expected)


# --- item 2: `linkshaper capture FILE` in a directory others may write ------------------------

CLI = [sys.executable, "-m", "engine.cli.main"]


def test_capture_writes_over_a_file_of_its_own(tmp_path: Path) -> None:
    """As tcpdump -w: a capture file of ours already there is emptied and written again."""
    from engine.captures.pcapng import CaptureWriter

    path = tmp_path / "mine.pcapng"
    path.write_bytes(b"an older capture, longer than a pcapng header is" * 10)
    writer = CaptureWriter(str(path))
    writer.close()
    assert path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # a section header block, nothing old
    assert b"older capture" not in path.read_bytes()


# --- item 3: `replay --check` says what it checked ---------------------------------------------


def test_replay_check_reads_the_trace_files_a_timeline_names(tmp_path: Path) -> None:
    """The bug: `replay --check` said "it can be replayed" of a timeline naming a trace file
    that does not exist; the replay then stopped at that step."""
    good = tmp_path / "good.trace"
    good.write_text("5\n")
    timeline = tmp_path / "t.jsonl"
    steps = [
        {"at": 0, "set": {"egress.latency": "5ms"}},
        {"at": 0.5, "set": {"egress.trace": str(good)}},
        {"at": 1, "set": {"ingress": {"trace": str(tmp_path / "missing.trace")}}},
    ]
    timeline.write_text("".join(json.dumps(step) + "\n" for step in steps))
    command = [*CLI, "replay", "--check", str(timeline)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1, result
    assert "step 3 (at 1 s)" in result.stderr and "missing.trace" in result.stderr, result
    assert "good.trace" not in result.stderr
    timeline.write_text("".join(json.dumps(step) + "\n" for step in steps[:2]))
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result
    assert "every trace file it names can be read here" in result.stderr, result
