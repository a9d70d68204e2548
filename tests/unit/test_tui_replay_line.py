"""The replay line after `x` says the replay stopped, where, and nothing more (issue 35, item 8:
it still read `■ replay done … next at 26.7 s, in 13.2 s  t pause/resume · x`); `o` loops a
replay from the TUI (item 16: only `tui --replay F --loop` could)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from textual.widgets import Input, Label
from textual.widgets._toast import Toast

from shaper_tui import replay_actions
from tests.tui_helpers import wait_until
from tests.unit.test_tui_snapshots import app_and_ready


def timeline(path: Path) -> str:
    """Steps at 0, 20 and 40 s: the second is far off when `x` comes."""
    path.write_text("".join(json.dumps({"at": at, "set": {"egress.latency": f"{ms}ms"}}) + "\n"
                            for at, ms in ((0.0, 11), (20.0, 22), (40.0, 33))))  # fmt: skip
    return str(path)


def test_x_leaves_a_line_that_says_stopped(tmp_path: Path) -> None:
    app, ready = app_and_ready()

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            app._start_replay(timeline(tmp_path / "t.jsonl"), 1.0, False)
            pane = app.timeline_pane
            await wait_until(pilot, lambda: pane.status is not None and pane.status.position == 1)
            assert "next at 20.0 s" in str(pane.render())
            await pilot.press("x")
            await wait_until(pilot, lambda: app.replay_worker is not None
                             and app.replay_worker.is_finished, 5, "the replay's end")  # fmt: skip
            await pilot.pause(0.6)
            assert [n.message for n in app._notifications][-1] == "Replay stopped"  # as docs say
            line = str(pane.render())
            assert "stopped" in line and "step 1/3" in line, line
            for gone in ("done", "next at", "pause/resume", "x stop"):
                assert gone not in line, line
            assert "x" not in app.screen.active_bindings
            assert app.screen.active_bindings["t"].binding.action == "timeline"

    asyncio.run(scenario())


def test_o_loops_the_replay_in_progress_and_the_next(tmp_path: Path) -> None:
    app, ready = app_and_ready()

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            app._start_replay(timeline(tmp_path / "t.jsonl"), 1.0, app.loop_replays)
            pane = app.timeline_pane
            await wait_until(pilot, lambda: pane.status is not None and pane.status.position == 1)
            assert app.runner is not None and not app.runner.loop
            await pilot.press("o")
            assert app.runner.loop and app.loop_replays
            await pilot.pause(0.4)
            assert "loop 1" in str(pane.render())
            await pilot.press("o")
            assert not app.runner.loop and not app.loop_replays
            await pilot.press("x")

    asyncio.run(scenario())


def test_t_offers_the_newest_recording_and_says_why_an_empty_enter_does_nothing(
    tmp_path: Path,
) -> None:
    """In a new session (nothing recorded yet) `t` offers the newest `*.jsonl` of the record
    directory; Enter on an emptied prompt says why nothing happened (it was silent, and the
    next keys landed in it)."""
    older, newer = timeline(tmp_path / "b-older.jsonl"), timeline(tmp_path / "a-newer.jsonl")
    os.utime(older, (1_000_000, 1_000_000))
    app, ready = app_and_ready()
    app.record_dir = tmp_path

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("t")
            await wait_until(pilot, lambda: bool(app.screen.query(Input)), 5, "the prompt")
            field = app.screen.query_one(Input)
            assert field.value == newer
            field.value = ""
            await pilot.press("enter")
            await pilot.pause()
            said = str(app.screen.query_one("#error", Label).render())
            assert "No path given" in said, said
            assert app.runner is None
            await pilot.press("escape")

    asyncio.run(scenario())


def test_t_completes_a_bare_recording_name_and_replays_it_from_the_record_directory(
    tmp_path: Path,
) -> None:
    """Issue 35 (s23): the prompt completed only whole paths, so a recording's name typed as
    `ls` shows it (no directory) completed to nothing; now → completes it, and Enter replays
    that recording of the record directory."""
    timeline(tmp_path / "b-older.jsonl")
    timeline(tmp_path / "a-newer.jsonl")
    app, ready = app_and_ready()
    app.record_dir = tmp_path

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("t")
            await wait_until(pilot, lambda: bool(app.screen.query(Input)), 5, "the prompt")
            field = app.screen.query_one(Input)
            field.value = ""
            await pilot.press(*"b-o")
            await pilot.pause(0.2)  # the suggester answers in a worker
            await pilot.press("right")
            await pilot.pause()
            assert field.value == "b-older.jsonl", field.value
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.runner is not None, 5, "the replay")
            assert app.runner is not None
            await pilot.press("x")

    asyncio.run(scenario())


def test_the_stopped_line_says_the_time_played_and_goes_after_a_while(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New-user report 35b, item 7: `■ replay stopped … after 18.0 s` stayed for 10+ minutes
    at 80x24, and its time was only that into the current loop."""
    monkeypatch.setattr(replay_actions, "END_LINE_SECONDS", 1.5)
    app, ready = app_and_ready()
    path = tmp_path / "short.jsonl"
    path.write_text("".join(json.dumps({"at": at, "set": {"egress.latency": f"{ms}ms"}}) + "\n"
                            for at, ms in ((0.0, 11), (0.4, 22))))  # fmt: skip

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            app._start_replay(str(path), 1.0, True)  # 0.4 s a loop
            pane = app.timeline_pane
            await wait_until(pilot, lambda: pane.status is not None and pane.status.cycle >= 2,
                             10, "a third loop")  # fmt: skip
            await pilot.press("x")
            await wait_until(pilot, lambda: "stopped" in str(pane.render()), 5, "stopped")
            line = str(pane.render())
            played = float(line.split(" after ")[1].split(" s")[0])
            assert played >= 0.8 and "loops" in line, line  # not the time into one loop
            await wait_until(pilot, lambda: not pane.display or pane.status is None, 5,
                             "the line gone")  # fmt: skip
            assert not pane.has_class("-active")

    asyncio.run(scenario())


def test_a_toast_does_not_cover_the_replay_line(tmp_path: Path) -> None:
    """New-user report 35b, item 9: at 80x24 toasts covered the replay line."""
    app, ready = app_and_ready()

    async def scenario() -> None:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await ready(pilot)
            app._start_replay(timeline(tmp_path / "t.jsonl"), 1.0, False)
            pane = app.timeline_pane
            await wait_until(pilot, lambda: pane.status is not None and pane.status.position == 1)
            app.notify("a word about something", timeout=5)
            await pilot.pause(0.5)
            toasts = list(app.screen.query(Toast))
            assert toasts
            for toast in toasts:
                assert not toast.region.overlaps(pane.region), (toast.region, pane.region)

    asyncio.run(scenario())
