"""Discoverable (issue 35, item 15): the help tells each key once a screen, covers every
screen (the advanced controls and the packets view's keys too), says what the screen says
(`Q-drops`), is searchable, has a footer of its own; the palette prints no Markdown."""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import cache

from shaper_tui.key_help import HelpSection
from shaper_tui.screens.help import HelpScreen
from shaper_tui.screens.packets import PacketsScreen
from tests.unit.test_packets_view import MovingFeed
from tests.unit.test_tui_layout import screen_lines
from tests.unit.test_tui_snapshots import app_and_ready


@cache
def sections_and_screens() -> tuple[list[HelpSection], str, list[str], list[str], list[str]]:
    """The help's sections; its whole text; the screen with help open, then after `/outage`;
    the palette's entries' sentences."""

    async def scenario() -> tuple[list[HelpSection], str, list[str], list[str], list[str]]:
        app, ready = app_and_ready()
        async with app.run_test(size=(100, 40)) as pilot:
            await ready(pilot)
            await pilot.press("question_mark")
            await pilot.pause(0.3)
            assert isinstance(app.screen, HelpScreen)
            help_screen = app.screen
            whole = help_screen._markdown("")
            opened = screen_lines(app)
            await pilot.press("slash", *"outage")
            await pilot.pause(0.3)
            searched = help_screen._markdown("outage")
            await pilot.press("escape")
            commands = [c.help for c in app.get_system_commands(app.screen_stack[0])]
            return app.help_sections(), whole, opened, searched.splitlines(), commands

    return asyncio.run(scenario())


def test_help_tells_each_key_once_a_screen_and_covers_every_screen() -> None:
    sections, whole, _opened, _searched, _commands = sections_and_screens()
    for section in sections:
        keys = Counter(k.strip() for line in section.lines for k in line.keys.split(" / "))
        repeated = [k for k, n in keys.items() if n > 1]
        assert not repeated, f"{section.title}: {repeated}"
    main = next(s for s in sections if s.title == "Main screen")
    lines = {line.keys: line.text for line in main.lines}
    assert "Stop recording" in lines["r"] and "Start recording" in lines["r"]
    assert "Pause" in lines["t"] and "Resume" in lines["t"] and "Replay" in lines["t"]
    titles = " ".join(s.title for s in sections)
    for screen in ("Packets view", "History", "Presets", "prompt", "This help"):
        assert screen in titles, titles
    packets = next(s for s in sections if s.title.startswith("Packets view"))
    assert {"d", "s", "space"} <= {k for line in packets.lines for k in line.keys.split(" / ")}
    # The advanced controls, by the names the panels give them.
    for control in ("Queue as", "ECN", "Duplicate", "Corrupt", "Reorder", "Slots", "Out every",
                    "Out for"):  # fmt: skip
        assert f"**{control}**" in whole, control
    assert "Q-full" not in whole and "Q-drops" in whole


def test_help_is_searchable_has_its_own_footer_and_the_palette_no_backticks() -> None:
    _sections, whole, opened, searched, commands = sections_and_screens()
    assert opened[-1].split() == ["esc", "Close", "/", "Search"], opened[-1]
    items = [line for line in searched if line.startswith("- ")]
    assert items and all("outage" in line.lower() for line in items), searched
    assert len(searched) < len(whole.splitlines()) / 3
    assert commands and not [c for c in commands if "`" in c]


def test_help_from_the_packets_view_opens_at_its_keys() -> None:
    """Second new-user pass: `?` in the packets view opened the help at the main screen's
    keys; it opens at the packets view's section."""

    async def scenario() -> list[str]:
        app, ready = app_and_ready()
        async with app.run_test(size=(100, 40)) as pilot:
            await ready(pilot)
            app.push_screen(PacketsScreen(MovingFeed()))  # type: ignore[arg-type]
            await pilot.pause(0.3)
            await pilot.press("question_mark")
            await pilot.pause(0.5)
            assert isinstance(app.screen, HelpScreen)
            return screen_lines(app)

    lines = asyncio.run(scenario())
    assert any("Packets view (v)" in line for line in lines[2:5]), "\n".join(lines[:10])
