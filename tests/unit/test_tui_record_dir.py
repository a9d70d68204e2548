"""`r` says where the recording goes in full, into a directory of the user's data made for it
(issue 35, item 13: it wrote to the working directory and named only the file)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from shaper_tui.app import create_app
from shaper_tui.cli import build_parser
from tests.scripted_engine import ScriptedEngine
from tests.tui_helpers import record_notifications, wait_until
from tests.unit.test_tui_snapshots import SPEC


def test_the_default_is_the_users_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    assert build_parser().parse_args([]).record_dir == "/srv/data/linkshaper/recordings"
    monkeypatch.delenv("XDG_DATA_HOME")
    expected = Path.home() / ".local/share/linkshaper/recordings"
    assert build_parser().parse_args([]).record_dir == str(expected)


def test_r_names_the_recording_by_its_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = create_app(ScriptedEngine(SPEC, 4), tag="tui:test", record_dir="made/for/it")
    said: list[str] = []

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            record_notifications(app, said)
            await wait_until(pilot, lambda: app.stats_seen > 0, 10, "the scripted stats")
            await pilot.press("r")
            await pilot.press("r")

    asyncio.run(scenario())
    (recording,) = (tmp_path / "made/for/it").glob("linkshaper-*.jsonl")
    assert os.stat(recording.parent).st_mode & 0o777 == 0o700
    assert f"Recording to {recording}; r stops" in said
    assert f"Recording saved to {recording}; t replays it" in said
