"""Trace and capture files in directories others may write, with the real engine in the lab
(root). The rest is in tests/unit/test_trace_files.py."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from engine.lab.harness import EngineProcess, ping_rtts
from engine.lab.lab import Lab
from tests import ROOT
from tests.netns_thread import in_netns
from tests.planted_links import (
    NOBODY,
    PLANT_PATIENCE,
    assert_untouched,
    needs_root,
)
from tests.unit.test_trace_files import CLI

StartEngine = Callable[..., EngineProcess]


PORT = 8093


BOTH_5MS = {"ingress": {"latency": 5}, "egress": {"latency": 5}}


#: A root-only file that is a valid trace: one opportunity a second. Were it ever in force on
#: egress, a ping would wait for it ~500 ms on average, not the admitted trace's ~2.5 ms.
SLOW_VICTIM = b"1000\n"


def as_nobody(script: str, *args: str) -> None:
    """`sh -c script` as `nobody` (a user who may write the shared directory, nothing else)."""
    subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         "sh", "-c", script, "nobody", *args],
        check=True, timeout=PLANT_PATIENCE,
    )  # fmt: skip


def request_in_box(
    lab: Lab, port: int, method: str, path: str, body: bytes | None = None
) -> tuple[int, str]:
    """One HTTP request from inside the box, where the API listens on loopback."""

    def call() -> tuple[int, str]:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    return in_netns(lab.ns("box"), call)


def _patch(lab: Lab, changes: Mapping[str, object]) -> tuple[int, str]:
    return request_in_box(lab, PORT, "PATCH", "/qos", json.dumps(changes).encode())


@needs_root
@pytest.mark.lab
def test_a_link_swapped_in_after_a_trace_is_admitted_is_never_followed(
    start_engine: StartEngine, lab: Lab, shared_dir: Path, victim: Path, tmp_path: Path
) -> None:
    """The bug: nobody writes T/n.trace, a client puts it in force over HTTP, nobody swaps
    it for a link to a root-only file; every later PATCH made root read that file through the
    link (its first line came back in the 422: an oracle), a valid one became the trace in
    force in the workers, and while it was invalid no PATCH of any field went through."""
    slow = tmp_path / "slow-victim"
    slow.write_bytes(SLOW_VICTIM)
    os.chmod(slow, 0o600)
    engine = start_engine(
        BOTH_5MS, extra=("--http", f"127.0.0.1:{PORT}", "--trace-dir", str(shared_dir))
    )
    as_nobody('printf "5\\n" > "$1"', str(shared_dir / "n.trace"))
    status, text = _patch(lab, {"egress.trace": "n.trace"})
    assert status == 200, text
    in_force = str((shared_dir / "n.trace").resolve())
    swap = 'rm -f "$1" && ln -s "$2" "$1"'
    # Swapped for a link to a root-only file that is no trace: a change of another field
    # goes through, and nothing of the file shows anywhere.
    as_nobody(swap, str(shared_dir / "n.trace"), str(victim))
    status, text = _patch(lab, {"egress.latency": "6ms"})
    assert status == 200, text
    answers = [text]
    # Naming the path in force again (a client writing back what it read), or copying it to
    # another field, takes what was admitted: nothing is read through the link.
    for changes in ({"egress.trace": in_force}, {"ingress.trace": in_force}):
        status, text = _patch(lab, changes)
        assert status == 200, (changes, text)
        answers.append(text)
    # A valid root-only trace behind the link never comes into force, in the gate or in the
    # workers (each change sends them a Configure): pings keep the admitted trace's pace.
    as_nobody(swap, str(shared_dir / "n.trace"), str(slow))
    for latency in ("7ms", "5ms"):
        status, text = _patch(lab, {"egress.latency": latency})
        assert status == 200, text
        answers.append(text)
    rtts = ping_rtts(lab, count=10, interval=0.1)
    assert len(rtts) >= 8, rtts
    # 10 ms of latency both ways, up to 5 ms waiting for the admitted trace's opportunity;
    # the slow victim would add ~500 ms on average. 100 ms is far from both.
    assert statistics.median(rtts) < 100, rtts
    answers.append(request_in_box(lab, PORT, "GET", "/qos")[1])
    answers.append(request_in_box(lab, PORT, "GET", "/stats")[1])
    with engine.client() as client:
        answers.append(client.stats().model_dump_json())
    answers.append(engine.stderr())
    for text in answers:
        assert "secret" not in text and "whole number" not in text, text
    # A new trace named over HTTP is still read now, and not through a link.
    status, text = _patch(lab, {"egress.trace": "n.trace"})
    assert status == 422 and "only files in the trace directory" in text, text
    as_nobody('ln -s "$2" "$1"', str(shared_dir / "inner.trace"), str(shared_dir / "n.trace"))
    status, text = _patch(lab, {"ingress.trace": "inner.trace"})
    assert status == 422, text
    assert engine.process.poll() is None


#: How long a refused capture may take: it answers at once; a FIFO's open waited for ever.
CAPTURE_PATIENCE = 20.0


def capture_to(path: Path, control: str) -> subprocess.CompletedProcess[str]:
    """`linkshaper capture FILE` as root, for a second, from the engine at `control`."""
    return subprocess.run(
        [*CLI, "capture", str(path), "--seconds", "1", "--control", control],
        capture_output=True, text=True, timeout=CAPTURE_PATIENCE, cwd=ROOT,
    )  # fmt: skip


@needs_root
@pytest.mark.lab
def test_capture_writes_no_file_planted_by_another_user(
    start_engine: StartEngine, shared_dir: Path, victim: Path, tmp_path: Path
) -> None:
    """The bug: a FIFO nobody planted at FILE hung the CLI for ever, a link gave a traceback,
    and a file nobody made was written into and stayed theirs (they read the capture)."""
    fifo, link, theirs = (shared_dir / name for name in ("fifo.pcapng", "link.pcapng", "t.pcapng"))
    engine = start_engine(BOTH_5MS)
    (shared_dir / "ours.pcapng").write_bytes(b"an older capture")
    as_nobody('mkfifo "$1" && ln -s "$2" "$3" && printf mine > "$4"',
              str(fifo), str(victim), str(link), str(theirs))  # fmt: skip
    for path, reason in (
        (fifo, "a FIFO"),
        (link, "a symbolic link, not followed"),
        (theirs, f"a file of another user (uid {NOBODY})"),
    ):
        started = time.monotonic()
        result = capture_to(path, engine.control)
        assert time.monotonic() - started < CAPTURE_PATIENCE
        assert result.returncode == 1, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0], result.stderr
    assert_untouched(victim)
    assert theirs.read_bytes() == b"mine" and theirs.stat().st_uid == NOBODY
    # A name with two (a hard link to a file elsewhere) is not written either.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"keep")
    os.link(elsewhere, shared_dir / "hard.pcapng")
    result = capture_to(shared_dir / "hard.pcapng", engine.control)
    assert result.returncode == 1 and "hard links" in result.stderr, result
    assert elsewhere.read_bytes() == b"keep"
    # A file of ours is written over, as tcpdump -w does; a new one is made.
    for name in ("ours.pcapng", "new.pcapng"):
        result = capture_to(shared_dir / name, engine.control)
        assert result.returncode == 0, result
        assert (shared_dir / name).read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # pcapng's start
    # And a device, as tcpdump -w /dev/null (the capture bench runs it so): only the
    # privileged make one.
    assert capture_to(Path(os.devnull), engine.control).returncode == 0
