"""Every change the supervisor applies is written to the spec file, whole or not at all, in the
seed's shape; a SIGHUP without an edit keeps it; a file that cannot be written is reported and
the change stays in force. A real supervisor without workers."""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path

import pytest

from engine.daemon.config import EngineConfig
from engine.daemon.supervisor import Supervisor
from engine.files.regular_files import write_atomically
from engine.files.spec_files import read_spec
from engine.model.spec import SEED_LINK_FIELDS, parse_spec
from engine.protocol.messages import PatchSpec, SetSpec, SpecReply


def supervisor_on(path: Path, persist: bool = True) -> Supervisor:
    path.write_text('{"default_link": {"egress": {"latency": "5ms"}}}\n')
    return Supervisor(
        EngineConfig("outer", "inner", str(path), persist=persist), read_spec(str(path))
    )


def patch(supervisor: Supervisor, changes: dict[str, object]) -> None:
    reply = supervisor.handle(PatchSpec(changes=changes, source="test"))
    assert isinstance(reply, SpecReply), reply


def test_a_change_is_written_in_the_seeds_shape_and_read_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    supervisor = supervisor_on(path)
    voip = {"label": "voip", "flow": {"ip": 33_559_238, "protocol": 17}}
    spec = parse_spec({"default_link": {"egress": {"latency": 40}}, "flows": [voip]})
    assert isinstance(supervisor.handle(SetSpec(spec=spec, source="test")), SpecReply)
    saved = json.loads(path.read_text())
    assert set(saved["default_link"]["egress"]) == set(SEED_LINK_FIELDS)
    assert saved["flows"][0]["label"] == "voip"
    assert read_spec(str(path)) == supervisor.spec
    patch(supervisor, {"egress.queue.packets": 30})  # an extension is written where it is set
    # A second change so soon is written once SPEC_WRITE_INTERVAL is over, not at once.
    deadline = time.monotonic() + 10
    while "queue" not in json.loads(path.read_text())["default_link"]["egress"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert json.loads(path.read_text())["default_link"]["egress"]["queue"]["packets"] == 30
    assert read_spec(str(path)) == supervisor.spec
    assert [p.name for p in tmp_path.iterdir()] == ["spec.json"]  # no temporary file left


def test_sighup_without_an_edit_keeps_the_change_and_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    supervisor = supervisor_on(path)
    patch(supervisor, {"egress.latency": 40})
    written = path.read_text()
    assert supervisor.reload()
    assert supervisor.spec.default_link.egress.latency == 40
    assert path.read_text() == written


def test_a_file_that_cannot_be_written_is_reported_and_the_change_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gone" / "spec.json"
    path.parent.mkdir()
    supervisor = supervisor_on(path)
    path.unlink()
    path.parent.rmdir()
    with caplog.at_level(logging.ERROR, logger="linkshaper"):
        patch(supervisor, {"egress.latency": 40})
    assert supervisor.spec.default_link.egress.latency == 40
    assert any("cannot save the spec" in r.getMessage() for r in caplog.records)


def test_no_persist_leaves_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    supervisor = supervisor_on(path, persist=False)
    before = path.read_text()
    patch(supervisor, {"egress.latency": 40})
    assert path.read_text() == before


def test_an_atomic_write_keeps_the_mode_and_replaces_whole(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text("old")
    os.chmod(path, 0o600)
    inode = path.stat().st_ino
    write_atomically(str(path), b"new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != inode  # a new file renamed over it, not the old one rewritten
