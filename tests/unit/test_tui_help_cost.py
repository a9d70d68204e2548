"""The help opens at once and its search keeps up with typing (new-user report 22, finding
14: `?` took 1.2 s, each letter of a search up to 0.7 s, since Textual's Markdown widget mounted
a widget per block of the whole help on open and again on every letter). Counted, not timed:
the widgets the help mounts, and how often a burst of letters re-draws its text."""

from __future__ import annotations

import asyncio

import pytest

from shaper_tui.screens.help import HelpScreen
from tests.unit.test_tui_layout import screen_lines
from tests.unit.test_tui_snapshots import app_and_ready

#: The help's own widgets: its frame, the search field, the scroller, the text, the footer's.
MOST_WIDGETS = 40


def test_help_mounts_few_widgets_and_a_typed_word_draws_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: list[str] = []
    show = getattr(HelpScreen, "show_search", None)

    def counted(screen: HelpScreen) -> None:
        drawn.append(screen.search.value)
        if show is not None:
            show(screen)

    monkeypatch.setattr(HelpScreen, "show_search", counted, raising=False)

    async def scenario() -> None:
        app, ready = app_and_ready()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("question_mark")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, HelpScreen)
            widgets = list(screen.walk_children())
            assert len(widgets) <= MOST_WIDGETS, len(widgets)
            await pilot.press("slash", *"capture")
            await pilot.pause(0.3)
            assert drawn == ["capture"]  # the burst filtered once, for the whole word
            text = "\n".join(screen_lines(app))
            assert "c: Capture" in text, text
            assert "Presets" not in text

    asyncio.run(scenario())
