"""The direction panels at the sizes a user sees (new-user report 22, findings 4, 7, 8, 12):
graphs fill their width with history, delays always carry a unit, a blocked queue says it
holds its frames, the focused control stays on screen after a resize, and both panels give
their graphs the same rows with the time axis kept."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult
from textual.containers import Horizontal

from engine.model.rates import LinkRates
from engine.model.spec import LinkSpec
from shaper_tui.widgets.direction_panel import ControlsScroll, DirectionPanel
from shaper_tui.widgets.scaled_graph import _BLANK, _FLOOR
from shaper_tui.widgets.time_axis import TimeAxis
from tests.tui_helpers import wait_until


class TwoPanels(App[None]):
    """Both directions side by side, as on the main screen."""

    def __init__(self, link: LinkSpec) -> None:
        super().__init__()
        self.panels = {d: DirectionPanel(d, link) for d in ("ingress", "egress")}

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield from self.panels.values()


LINK = LinkSpec(rate=12_000_000, latency=50)


def test_a_graph_at_200x60_fills_its_width_with_history() -> None:
    """At 200x60 the graphs are about 72 cells but held 50 s: 22 columns stayed blank."""

    async def scenario() -> tuple[str, str, int]:
        app = TwoPanels(LINK)
        async with app.run_test(size=(200, 60)) as pilot:
            panel = app.panels["egress"]
            await pilot.pause()
            width = panel.sparks["out"].graph.size.width
            for _ in range(2 * width + 4):
                panel.show_rates(LinkRates(bits_in=6e6, bits_out=6e6))
            await pilot.pause()
            graph = panel.sparks["out"].graph
            bottom = graph.render_line(graph.size.height - 1).text
            axis = panel.query_one(TimeAxis).children[1].render()
            return bottom, str(axis), width

    bottom, axis, width = asyncio.run(scenario())
    assert width >= 70, width
    assert bottom[0] not in (_FLOOR, chr(_BLANK), " "), bottom
    # The axis labels the span drawn: a graph of `width` cells at one a second goes back
    # past a minute (it stopped at -50s).
    assert "-60s" in axis or "-1m" in axis, axis


def test_delays_carry_a_unit_and_a_blocked_queue_says_it_holds() -> None:
    """After a block the figure read `11775/11784` (its ` ms` cut by the column) and the
    Q limit line `1 s` beside a 12 s round trip."""

    async def scenario() -> tuple[str, str, str]:
        app = TwoPanels(LINK)
        async with app.run_test(size=(120, 40)) as pilot:
            panel = app.panels["egress"]
            panel.show_delay(11775.0, 11784.0)
            panel.show_rtt(100.0, 11855.0)
            panel.show_link(LINK.model_copy(update={"rate": 0}))
            panel.show_rates(LinkRates(queue_packets=76))
            await pilot.pause()
            return (str(panel.sparks["delay"].figure.render()), str(panel.rtt.render()),
                    str(panel.queue_limits.render()))  # fmt: skip

    delay, rtt, limits = asyncio.run(scenario())
    assert delay.strip() == "11.8/11.8 s", delay
    assert rtt.endswith("measured 11.9 s"), rtt
    assert "blocked" in limits and "76" in limits and "held" in limits, limits


def _tops(app: TwoPanels) -> list[tuple[int, ...]]:
    """Each panel's graphs' and time axis's top rows and heights."""
    return [
        tuple(s.region.y for s in p.sparks.values())
        + tuple(s.region.height for s in p.sparks.values())
        + (p.query_one(TimeAxis).region.y, p.query_one(TimeAxis).region.height)
        for p in app.panels.values()
    ]


def test_both_panels_keep_their_graph_rows_in_line_with_a_stall_note() -> None:
    """A stall note on one panel took its time axis and put its rows out of line."""
    note = ("~0 pkt/s since the block: TCP backs off (each retry waits twice as long, up to 2"
            " min) and resumes by itself; new connections start at once")  # fmt: skip

    async def scenario(size: tuple[int, int]) -> list[tuple[int, ...]]:
        app = TwoPanels(LINK)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            app.panels["ingress"].show_stall(note)
            app.panels["egress"].show_saturated(12.0)
            await pilot.pause()
            await pilot.pause()
            assert "Widget" not in app.export_screenshot()  # the pad is blank
            return _tops(app)

    for size in ((120, 40), (80, 24)):
        down, up = asyncio.run(scenario(size))
        assert down == up, (size, down, up)
        assert down[-1] == 1, (size, down)  # the time axis keeps its row


def test_the_focused_control_stays_on_screen_after_a_resize() -> None:
    """120x40 with `a` open, focus on Download Outage, resized to 80x24: it was off screen."""
    from shaper_tui.app import create_app
    from tests.scripted_engine import ScriptedEngine
    from tests.unit.test_tui_snapshots import SPEC

    async def scenario() -> tuple[int, int, int, int]:
        app = create_app(ScriptedEngine(SPEC, 10), tag="tui:test")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.stats_seen >= 4, 10, "the scripted stats")
            await pilot.press("a")
            await pilot.pause()
            control = app.query_one("#ingress-outage")
            control.focus()
            await pilot.pause()
            await pilot.resize_terminal(80, 24)
            for _ in range(5):
                await pilot.pause(0.05)
            shown = control.query_ancestor(ControlsScroll).region
            return control.region.y, control.region.bottom, shown.y, shown.bottom

    top, bottom, shown_top, shown_bottom = asyncio.run(scenario())
    assert bottom > top and shown_top <= top and bottom <= shown_bottom, (
        top, bottom, shown_top, shown_bottom)  # fmt: skip


def test_the_history_gives_both_directions_the_same_rows_at_80x24() -> None:
    """A change in one direction only showed that direction's `Changed` row: at 80x24 the
    Download `Drops` graph had 2 rows and the Upload one 3. (An odd row of the screen goes to
    the Download's graphs, one row at most: left blank, it was an empty row, s23.)"""
    from shaper_tui.history import History
    from shaper_tui.screens.history import DirectionHistory, HistoryScreen
    from tests.scripted_engine import script
    from tests.unit.test_tui_snapshots import SPEC, app_and_ready

    history = History(clock=0.0)
    history.spec(SPEC, now=0.0)
    for sample in script(100):
        history.sample(sample, now=sample.at - 100.0)
    egress = SPEC.default_link.egress.model_copy(update={"rate": 3_000_000})
    history.spec(SPEC.model_copy(update={"default_link": SPEC.default_link.model_copy(
        update={"egress": egress})}), now=10.0)  # fmt: skip

    async def scenario() -> list[tuple[int, ...]]:
        app, ready = app_and_ready()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            app.push_screen(HistoryScreen(history))
            await pilot.pause(0.5)
            return [
                (*(graph.region.height for graph in each.graphs.values()), each.axis.region.height)
                for each in app.screen.query(DirectionHistory)
            ]

    down, up = asyncio.run(scenario())
    assert down[-1] == up[-1] == 1, (down, up)
    assert 0 <= sum(down) - sum(up) <= 1 and all(
        0 <= d - u <= 1 for d, u in zip(down, up, strict=True)
    ), (
        down,
        up,
    )
