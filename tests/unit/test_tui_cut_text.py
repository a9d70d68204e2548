"""No text cut (issue 35, item 7): at 80 columns the footer keeps `q Quit` during a replay,
every screen's footer is its own (no `^p palette` over a key), prompt errors wrap, the status
bar leaves a figure out whole, the flows table's figures and headers are whole, and packet
summaries keep their destination. Checked on the rendered screen, against the scripted
engine."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from textual.widgets import Input

from shaper_tui.app import create_app
from shaper_tui.screens.packets import PacketsScreen
from shaper_tui.widgets.key_footer import fitting
from tests.scripted_engine import ScriptedEngine
from tests.tui_helpers import wait_until
from tests.unit.test_tui_layout import screen_lines
from tests.unit.test_tui_snapshots import SPEC, FixedFeed, app_and_ready


def test_the_80_column_footer_keeps_help_and_quit_during_a_replay(tmp_path: Path) -> None:
    timeline = tmp_path / "steps.jsonl"
    timeline.write_text(
        "".join(json.dumps({"at": at, "set": {"egress.latency": f"{ms}ms"}}) + "\n"
                for at, ms in ((0.1, 11), (60, 22)))
    )  # fmt: skip

    async def scenario() -> list[str]:
        app = create_app(
            ScriptedEngine(SPEC, 40), tag="tui:test", replay=str(timeline), record_dir=str(tmp_path)
        )
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.runner is not None, 10, "the replay")
            await pilot.press("r")  # recording too: `r ■ Stop` is longer than `r Record`
            await wait_until(pilot, lambda: app.session.history.can_undo, 10, "an undo step")
            # The footer is made again after each change of the keys: wait for it to be.
            await wait_until(pilot, lambda: "Stop" in screen_lines(app)[-1], 10, "the footer")
            lines = screen_lines(app)
            return lines

    lines = asyncio.run(scenario())
    footer = lines[-1].rstrip()
    assert footer.endswith("? Help q Quit"), footer
    assert "x Stop" in footer or "Pause" in footer, footer


def test_keys_that_do_not_fit_are_left_out_whole() -> None:
    class Key:
        def __init__(self, key: str, description: str, action: str) -> None:
            self.key_display, self.description, self.action = key, description, action

    keys = [Key("p", "Presets", "app.presets"), Key("b", "Block", "app.block"),
            Key("R", "Reset", "app.reset"), Key("?", "Help", "app.help"),
            Key("q", "Quit", "app.quit")]  # fmt: skip
    # 7 + 7 kept, 10 + 8 fit, 8 more do not.
    shown = fitting(keys, 32)  # type: ignore[arg-type]
    assert [k.description for k in shown] == ["Presets", "Block", "Help", "Quit"]


def test_every_screen_has_its_own_footer() -> None:
    async def scenario() -> tuple[str, str, str]:
        app, ready = app_and_ready()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            app.push_screen(PacketsScreen(FixedFeed()))  # type: ignore[arg-type]
            await pilot.pause(0.3)
            packets = screen_lines(app)
            await pilot.press("b")  # the main screen's key does nothing here
            await pilot.pause(0.2)
            blocked = str(app.spec.default_link.egress.rate)
            await pilot.press("escape", "down", "enter")
            await pilot.pause(0.2)
            prompt = screen_lines(app)[-1]
            return packets[-1], prompt, blocked

    packets, prompt, egress_rate = asyncio.run(scenario())
    assert packets.rstrip() == (
        "esc Close d Direction s Fate space Pause J Layers ↓ K Layers ↑ ? Help q Quit"
    )  # J/K: the selected packet's layers are taller than their pane at 80x24
    assert egress_rate == "5000000"
    assert prompt.rstrip() == "⏎ Apply esc Cancel"


def test_a_prompt_error_wraps_whole() -> None:
    async def scenario() -> str:
        app, ready = app_and_ready()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("down", "down", "down", "enter")  # Latency
            app.screen.query_one(Input).value = "1e400000ms"
            await pilot.press("enter")
            await pilot.pause(0.2)
            # The dialog's rows: what is between its borders (`█`).
            rows = [line.split("█")[1] for line in screen_lines(app) if line.count("█") >= 2]
            return " ".join(row.strip() for row in rows)

    text = asyncio.run(scenario())
    assert "Latency: not a finite duration: '1e400000ms'" in text, text


def test_status_bar_and_flows_table_show_whole_figures() -> None:
    async def scenario() -> list[str]:
        app, ready = app_and_ready()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("a")
            bar = app.status_bar
            bar.short_figures = "CPU engine 3% tui 5%"
            bar.figures = "CPU engine 3% · tui 5% of a core · engine 115 MB"
            await pilot.pause(0.2)
            return screen_lines(app)

    lines = asyncio.run(scenario())
    parts = [p.strip() for p in lines[0].split("│")]
    assert parts[0] == "● attached eth0 ↔ veth-app"
    whole = {"CPU engine 3% tui 5%", "scripted engine (tests)",
             "CPU engine 3% · tui 5% of a core · engine 115 MB"}  # fmt: skip
    assert all(p in whole for p in parts[1:]), parts
    assert len(parts) >= 2
    table = "\n".join(lines)
    assert "Drops/s  Queue" in table and "4.5 Mbit/s" in table and "1.25 Mbit/s" in table


def test_packet_summaries_keep_the_destination_at_80_columns() -> None:
    async def scenario() -> list[str]:
        app, ready = app_and_ready()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            app.push_screen(PacketsScreen(FixedFeed()))  # type: ignore[arg-type]
            await pilot.pause(0.3)
            return screen_lines(app)

    lines = asyncio.run(scenario())
    rows = [line for line in lines if " > 198.18.0." in line]
    assert len(rows) == 4, "\n".join(lines)
    for row in rows:  # the destination's address and port, whole
        destination = row.split(" > ")[1].split()[0]
        assert destination.count(".") == 3 and ":" in destination, row
