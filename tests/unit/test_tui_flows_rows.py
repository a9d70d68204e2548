"""New-user report 35b, item 5: at 200x60 the flows table stopped at 8 far ends (the TUI kept
no more) while the docs promise up to 13 rows above 48 rows and the engine reports ten far
ends a direction; the table is as tall as its rows up to its breakpoint's cap."""

from __future__ import annotations

import asyncio

import pytest

from engine.model.stats import DirectionStats, LinkStats, Talker
from shaper_tui.app import create_app
from shaper_tui.messages import StatsArrived
from tests.scripted_engine import ScriptedEngine
from tests.tui_helpers import wait_until
from tests.unit.test_tui_snapshots import SPEC

#: Far ends with traffic: the download's ten busiest and the upload's (overlapping).
FAR_ENDS = 14


def _sample(i: int, direction: str) -> DirectionStats:
    carried = 100_000 * i
    first = 0 if direction == "ingress" else FAR_ENDS - 10
    talkers = [Talker(address=f"198.18.0.{n + 2}", protocol=6, port=5201, packets=10 * i,
                      bytes=carried * (n + 1)) for n in range(first, first + 10)]  # fmt: skip
    total = LinkStats(bytes_in=carried, bytes_out=carried, packets_in=10 * i, packets_out=10 * i)
    return DirectionStats(direction=direction, at=100.0 + i * 0.1, pid=7, total=total,
                          top_talkers=talkers)  # fmt: skip


def rows_shown(size: tuple[int, int]) -> tuple[int, int]:
    """The table's rows and its height on screen, with FAR_ENDS far ends and one flow."""

    async def main() -> tuple[int, int]:
        app = create_app(ScriptedEngine(SPEC, samples=0), tag="tui:flows")
        async with app.run_test(size=size) as pilot:
            await wait_until(pilot, lambda: app.spec == SPEC, 10, "the engine's spec")
            for i in range(30):
                for direction in ("ingress", "egress"):
                    app.post_message(StatsArrived(_sample(i, direction)))
                await pilot.pause()
            app.flows.refresh_rows()
            await pilot.pause(0.3)
            return app.flows.row_count, app.flows.outer_size.height

    return asyncio.run(main())


@pytest.mark.parametrize(("size", "visible"), [((120, 40), 7), ((200, 60), 13)])
def test_the_flows_table_fills_its_rows_up_to_the_breakpoints_cap(
    size: tuple[int, int], visible: int
) -> None:
    rows, height = rows_shown(size)
    assert rows >= visible, rows  # the flow and at least as many far ends as fit
    assert height == visible + 3, (rows, height)  # header and two borders
