"""The data gets the space (issue 35, item 9): at every size from 80x24 to 200x60 the graphs
grow into the spare rows, the flows table is as tall as its rows, no row of the screen is
empty, a time axis sits under the graphs, and `a` at 80x24 keeps every figure on screen.

Checked on the rendered screen (the cells Textual draws), against the scripted engine."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console
from textual.app import App

from shaper_tui.widgets.metric_spark import MetricSpark
from shaper_tui.widgets.scaled_graph import ScaledGraph
from shaper_tui.widgets.time_axis import SAMPLE_SECONDS, axis_line
from tests.unit.test_tui_snapshots import app_and_ready

SIZES = [(80, 24), (120, 40), (200, 60)]
#: What a row holds when it holds nothing: spaces between side borders (a top or bottom
#: border is not empty: it closes a box).
FRAME = set(" │┃▐▌")


def screen_lines(app: App[None]) -> list[str]:
    """The screen's rows as plain text, as drawn (a dialog over the screens under it): what
    `export_screenshot` draws, as text."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      force_terminal=True, legacy_windows=False, safe_box=False)  # fmt: skip
    drawn = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(drawn)
    return console.export_text().splitlines()[:height]


def empty_rows(lines: list[str]) -> list[int]:
    return [n for n, line in enumerate(lines) if set(line) <= FRAME]


def layout_at(size: tuple[int, int], keys: tuple[str, ...] = ()) -> dict[str, object]:
    """Render the main screen at `size` (after `keys`) and measure it."""

    async def scenario() -> dict[str, object]:
        app, ready = app_and_ready()
        async with app.run_test(size=size) as pilot:
            await ready(pilot)
            await pilot.press(*keys)
            await pilot.pause(0.2)
            flows = app.flows
            graphs = [g.size.height for g in app.query(ScaledGraph)]
            return {
                "lines": screen_lines(app),
                "flows_height": flows.outer_size.height,
                "flows_rows": flows.row_count,
                "graph_heights": graphs,
                "sparks_on_screen": [
                    s.id
                    for s in app.query(MetricSpark)
                    if app.screen.region.contains_region(s.region) and s.region.height > 0
                ],
            }

    return asyncio.run(scenario())


@pytest.mark.parametrize("size", SIZES)
def test_no_empty_rows_and_graphs_take_the_spare_height(size: tuple[int, int]) -> None:
    measured = layout_at(size)
    lines = measured["lines"]
    assert isinstance(lines, list)
    assert empty_rows(lines) == [], "\n".join(lines)
    # The table takes what its rows need: header, rows, its two borders.
    assert measured["flows_height"] == int(str(measured["flows_rows"])) + 3
    heights = measured["graph_heights"]
    assert isinstance(heights, list)
    # Ten graphs (five a panel) share the spare rows: the taller the screen, the taller they
    # are (at 80x24 the basic controls leave them one row each).
    least = {24: 1, 40: 3, 60: 7}[size[1]]
    assert min(heights) >= least, heights
    # A time axis under the graphs, in each panel.
    axes = [line for line in lines if "now" in line and "-10s" in line]
    assert len(axes) == 1 and axes[0].count("now") == 2, "\n".join(lines)


def test_advanced_at_80x24_keeps_every_figure_on_screen() -> None:
    measured = layout_at((80, 24), ("a",))
    lines = measured["lines"]
    assert isinstance(lines, list)
    text = "\n".join(lines)
    for figure in ("In", "Out", "Lost", "Q-drops", "Delay"):
        assert sum(1 for line in lines if f" {figure} " in line) >= 1, text
    assert len(measured["sparks_on_screen"]) == 10, text  # type: ignore[arg-type]
    assert empty_rows(lines) == [], text


def test_the_axis_says_how_long_ago_each_cell_was_drawn() -> None:
    # One second a cell (two samples of half a second): `-10s` starts ten cells left of the
    # newest, `now` closes the line; ticks past what the graph holds are left out.
    line = axis_line(30, 2 * SAMPLE_SECONDS, 50.0)
    assert line.endswith("now") and len(line) == 30
    assert line.index("-10s") == 29 - 10 and line.index("-20s") == 29 - 20
    assert "-30s" not in line  # it would start before the first cell
    assert "-60s" not in axis_line(200, 1.0, 50.0)


def test_down_moves_between_controls_when_they_scroll() -> None:
    """At 80x24 with `a` the controls scroll; ↓ still moves to the next control (the scroll
    container's own keys would scroll it instead) and the focused one is in view."""

    async def scenario() -> tuple[str | None, bool]:
        app, ready = app_and_ready()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("a")
            app.panels["egress"].controls["discipline"].focus()
            await pilot.press("down")
            await pilot.pause(0.2)
            focused = app.focused
            assert focused is not None
            return focused.id, app.screen.region.contains_region(focused.region)

    assert asyncio.run(scenario()) == ("egress-ecn", True)
