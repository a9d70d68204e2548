"""Graphs on absolute scales: the same value is always the same height; throughput is scaled
to the rate in force (marked), the rest to 1-2-5 steps over their recent maximum; taller
graphs when the terminal has the rows."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from engine.model.rates import LinkRates
from engine.model.spec import LinkSpec
from shaper_tui.widgets.direction_panel import DirectionPanel
from shaper_tui.widgets.metric_spark import MetricSpark
from shaper_tui.widgets.scaled_graph import braille_rows, levels, nice_ceiling
from tests.unit.test_tui_snapshots import app_and_ready


def test_levels_are_absolute_and_any_traffic_shows() -> None:
    assert levels(5.0, 10.0, 4) == 2 and levels(10.0, 10.0, 4) == 4
    assert levels(50.0, 10.0, 4) == 4  # clipped at the top
    assert levels(0.001, 10.0, 4) == 1 and levels(0.0, 10.0, 4) == 0


def test_braille_columns_fill_from_the_bottom_two_samples_a_cell() -> None:
    # Full and empty in one cell: the left column's four dots only.
    assert braille_rows([10.0, 0.0], 10.0, 1, 1) == [chr(0x2800 | 0x40 | 0x04 | 0x02 | 0x01)]
    # Two rows: a half-height sample fills the bottom row's column, nothing above.
    top, bottom = braille_rows([5.0, 5.0], 10.0, 1, 2)
    assert top == chr(0x2800) and bottom == chr(0x28FF)
    # An idle graph draws its floor; newest samples are on the right.
    assert braille_rows([], 10.0, 3, 1) == ["⣀⣀⣀"]
    assert braille_rows([10.0, 10.0], 10.0, 2, 1)[0][-1] == chr(0x28FF)


def test_nice_ceilings_step_1_2_5() -> None:
    assert [nice_ceiling(v, 1.0) for v in (0, 0.5, 1, 1.2, 3, 7, 41e6)] == [
        1.0, 1.0, 1.0, 2.0, 5.0, 10.0, 50e6
    ]  # fmt: skip


class PanelApp(App[None]):
    def __init__(self, link: LinkSpec) -> None:
        super().__init__()
        self.panel = DirectionPanel("egress", link)

    def compose(self) -> ComposeResult:
        yield self.panel


def show(link: LinkSpec, bits: list[float], size: tuple[int, int] = (80, 24)) -> DirectionPanel:
    async def scenario() -> DirectionPanel:
        app = PanelApp(link)
        async with app.run_test(size=size) as pilot:
            for value in bits:
                app.panel.show_rates(
                    LinkRates(bits_in=value, bits_out=value, packets_in=412, packets_out=410)
                )
            app.panel.show_delay(20.0, 45.0)
            await pilot.pause()
            return app.panel

    return asyncio.run(scenario())


def label_of(spark: MetricSpark) -> str:
    return str(spark.scale.render())


def test_throughput_is_drawn_against_the_rate_in_force_and_marked() -> None:
    panel = show(LinkSpec(rate=5_000_000, latency=30), [2e6, 6e6])
    out = panel.sparks["out"]
    assert out.graph.ceiling == 5e6 and out.scale.has_class("-at-rate")
    assert label_of(out).split() == ["Out", "5Mb/s"]
    assert str(panel.border_subtitle) == "412 pkt/s in · 410 out"
    delay = panel.sparks["delay"]  # at least the latency set, on 1-2-5 steps: 50 ms
    assert delay.graph.ceiling == 50.0 and label_of(delay).split() == ["Delay", "50ms"]


def test_unlimited_throughput_follows_its_recent_maximum_in_steps() -> None:
    panel = show(LinkSpec(), [41e6, 41e6, 3e6])
    out = panel.sparks["out"]
    assert out.graph.ceiling == 50e6 and not out.scale.has_class("-at-rate")
    assert label_of(out).split() == ["Out", "50Mb/s"]


def test_graphs_grow_taller_when_the_terminal_has_the_rows() -> None:
    async def height_at(size: tuple[int, int]) -> int:
        app, ready = app_and_ready(samples=4)
        async with app.run_test(size=size) as pilot:
            await ready(pilot)
            return app.query_one("#egress-out", MetricSpark).graph.size.height

    # They take the spare rows (see also test_tui_layout.py): one row at 80x24, more with each
    # row the terminal has.
    heights = [asyncio.run(height_at(size)) for size in ((80, 24), (120, 50), (200, 60))]
    assert heights[0] == 1 and heights[0] < heights[1] < heights[2], heights
