"""The flows table: rows updated in place while the same rows show, far ends that carried
nothing for a minute left out."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from engine.model.stats import DirectionStats, Talker
from shaper_tui.widgets.flows_table import IDLE_HIDE, FlowsTable


def sample(at: float, talkers: dict[str, int]) -> DirectionStats:
    return DirectionStats(
        direction="ingress",
        at=at,
        top_talkers=[
            Talker(address=address, protocol=17, port=53, packets=1, bytes=count)
            for address, count in talkers.items()
        ],
    )


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield FlowsTable(id="flows")


def test_idle_far_ends_leave_and_busy_ones_update_in_place() -> None:
    async def scenario() -> None:
        app = TableApp()
        async with app.run_test(size=(100, 20)) as pilot:
            table = app.query_one(FlowsTable)
            busy, chatter = "198.18.0.2:53 udp", "[ff02::1]:53 udp"
            table.add_sample(sample(0.0, {"198.18.0.2": 1000, "ff02::1": 90}))
            table.add_sample(sample(1.0, {"198.18.0.2": 2000, "ff02::1": 90}))
            table.refresh_rows()
            await pilot.pause()
            assert set(table.wanted_rows()) == {f"talker:{busy}", f"talker:{chatter}"}
            table.move_cursor(row=1)
            rows_before = list(table.rows)

            at = 1.0
            while at < IDLE_HIDE - 1:  # the chatter says nothing more; the busy one goes on
                at += 1.0
                table.add_sample(sample(at, {"198.18.0.2": int(at * 1000), "ff02::1": 90}))
            table.refresh_rows()
            await pilot.pause()
            assert list(table.rows) == rows_before  # the same rows, updated where they stand
            assert table.cursor_row == 1
            assert (
                table.get_cell(f"talker:{busy}", table.ordered_columns[1].key).plain == "8 kbit/s"
            )

            for _ in range(3):  # a minute on, the chatter's row goes
                at += 1.0
                table.add_sample(sample(at, {"198.18.0.2": int(at * 1000), "ff02::1": 90}))
            table.refresh_rows()
            await pilot.pause()
            assert [key.value for key in table.rows] == [f"talker:{busy}"]

    asyncio.run(scenario())


class ShortTableApp(App[None]):
    """The table as the app lays it out at 80x24 (`Screen.-short #flows`)."""

    CSS = "#flows { max-height: 6; }"

    def compose(self) -> ComposeResult:
        yield FlowsTable(id="flows")


def test_at_80_columns_a_short_table_shows_a_row_in_each_of_its_lines() -> None:
    """Issue 35 (s23): at 80x24 the table's third row was blank: more far ends than rows
    brought a vertical scrollbar, whose two columns pushed the fixed columns over the width
    and brought a horizontal one (the "blank" row), for a table nobody can scroll (it takes
    no focus). Now every line shows a far end and the border says how many are left out."""

    async def scenario() -> None:
        app = ShortTableApp()
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.query_one(FlowsTable)
            hosts = [f"198.18.0.{n}" for n in range(2, 7)]
            table.add_sample(sample(0.0, dict.fromkeys(hosts, 1000)))
            table.add_sample(sample(1.0, {h: 2000 + n for n, h in enumerate(hosts)}))
            table.refresh_rows()
            await pilot.pause()
            assert not table.show_horizontal_scrollbar and not table.show_vertical_scrollbar
            # The header and three far ends in the 4 lines inside the border.
            assert table.scrollable_content_region.height == 4
            table.refresh_rows()
            assert str(table.border_subtitle) == "2 more", table.border_subtitle

    asyncio.run(scenario())


def test_rows_follow_the_busiest_first_when_the_same_far_ends_change_places() -> None:
    """Second new-user pass: a far end that became the busiest stayed below idle ones (the
    rows were rebuilt only when the set of far ends changed, not their order)."""

    async def scenario() -> None:
        app = TableApp()
        async with app.run_test(size=(100, 20)) as pilot:
            table = app.query_one(FlowsTable)
            table.add_sample(sample(0.0, {"198.18.0.2": 0, "198.18.0.3": 0}))
            table.add_sample(sample(1.0, {"198.18.0.2": 5000, "198.18.0.3": 1000}))
            table.refresh_rows()
            await pilot.pause()
            first = [key.value for key in table.rows]
            assert first == ["talker:198.18.0.2:53 udp", "talker:198.18.0.3:53 udp"]
            table.add_sample(sample(2.0, {"198.18.0.2": 5000, "198.18.0.3": 9000}))
            table.refresh_rows()
            await pilot.pause()
            assert [key.value for key in table.rows] == first[::-1]

    asyncio.run(scenario())
