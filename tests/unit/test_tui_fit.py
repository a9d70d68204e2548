"""Text that fits (issue 35, items 5 and 7, what the session-21 pass still saw): at 80x24,
120x40 and 200x60 the rate prompt's hint, the replay line, the status bar when not attached,
IPv6 far ends, the toasts' bodies and the Upload panel in Gbit/s are read whole on the rendered
screen (a real Textual app on the scripted engine, or on a socket where no engine is)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from textual.widgets._toast import Toast

from tests.tui_helpers import wait_until
from tests.unit.test_tui_layout import screen_lines
from tests.unit.test_tui_snapshots import app_and_ready

SIZES = [(80, 24), (120, 40), (200, 60)]
#: A refusal as the engine's validator words it: `[...]` is Textual's markup.
REFUSAL = (
    "default_link.ingress.loss: Input should be less than or equal to 1 "
    "[type=less_than_equal, input_value=2.0, input_type=float] [b]"
)


@pytest.mark.parametrize("size", SIZES)
def test_a_toast_shows_its_body_as_written(size: tuple[int, int]) -> None:
    async def scenario() -> list[str]:
        app, ready = app_and_ready()
        async with app.run_test(size=size, notifications=True) as pilot:
            await ready(pilot)
            app.notify(REFUSAL, title="Not applied", severity="error")
            await pilot.pause(0.5)
            return [str(toast.render()) for toast in app.screen.query(Toast)]

    toasts = asyncio.run(scenario())
    assert len(toasts) == 1 and REFUSAL in toasts[0].replace("\n", " "), toasts


@pytest.mark.parametrize("size", SIZES)
def test_the_rate_prompt_hint_is_whole(size: tuple[int, int]) -> None:
    async def scenario() -> list[str]:
        app, ready = app_and_ready()
        async with app.run_test(size=size) as pilot:
            await ready(pilot)
            await pilot.press("enter")  # the download's Rate is focused
            await pilot.pause(0.3)
            return screen_lines(app)

    lines = asyncio.run(scenario())
    inside = " ".join(line.split("█")[1].strip() for line in lines if line.count("█") >= 2)
    hint = "e.g. 20mbit, 512kbit, 1.5gbit, blocked, unlimited; a bare number is in Mbit/s"
    assert hint in " ".join(inside.split()), inside


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_the_status_bar_when_not_attached_is_whole(width: int) -> None:
    """A plain `tui` with no engine: why, and how to start one, each whole or left out."""
    from shaper_tui.app import create_app
    from shaper_tui.engine_source import SocketSource

    path = Path("/tmp/tc-fit-none.sock")  # nothing listens there (the default's length)
    assert not path.exists()

    async def scenario() -> str:
        app = create_app(SocketSource(str(path)), tag="tui:test")
        async with app.run_test(size=(width, 24)) as pilot:
            for _ in range(50):
                await pilot.pause(0.1)
                if app.status_bar.attached is False:
                    break
            await pilot.pause(0.2)
            return screen_lines(app)[0]

    line = asyncio.run(scenario()).strip()
    assert line.startswith(f"○ not attached · no engine at {path}"), line
    told = line.split(f"{path}", 1)[1].split("│")[0].strip()
    assert told in ("", "· tui --demo starts one",
                    "· start one: linkshaper run OUTER INNER, or tui --demo") or (
        told.startswith(": cannot read its key (") and told.split(")")[1].strip() in (
            "", "· tui --demo starts one", "· start one: linkshaper run OUTER INNER, or tui --demo")
    ), line  # fmt: skip


@pytest.mark.parametrize("size", SIZES)
def test_the_replay_line_keeps_its_essentials(size: tuple[int, int], tmp_path: Path) -> None:
    """State, step i/n, the time to the next step and the keys, whole at every width."""
    path = tmp_path / "a-mobile-link-on-a-train.jsonl"
    path.write_text("".join(json.dumps({"at": at, "set": {"egress.latency": f"{ms}ms"}}) + "\n"
                            for at, ms in ((0.0, 11), (200.0, 22), (400.0, 33))))  # fmt: skip

    async def scenario() -> str:
        app, ready = app_and_ready()
        async with app.run_test(size=size) as pilot:
            await ready(pilot)
            app._start_replay(str(path), 2.0, True)
            pane = app.timeline_pane
            await wait_until(pilot, lambda: pane.status is not None and pane.status.position == 1)
            await pilot.pause(0.6)
            line = screen_lines(app)[-2]
            await pilot.press("x")
            return line

    line = asyncio.run(scenario()).rstrip()
    assert line.lstrip().startswith("▶ replay "), line
    assert "step 1/3" in line and re.search(r"\bin \d+\.\d s", line) and "loop 1" in line, line
    assert line.endswith("t pause x stop o loop") or line.endswith(
        "t pause/resume · x stop · o loop"
    ), line
    if size[0] >= 120:
        assert "a-mobile-link-on-a-train.jsonl" in line, line


def test_the_upload_panel_in_gbit_keeps_every_graph_at_80x24() -> None:
    """A Q limit in Gbit/s (`1000 pkts, 1 s (406,250 pkts)`) wrapped to a second row that
    `_fit` did not count: three of the Upload panel's graphs went off it."""
    from shaper_tui.app import create_app
    from tests.scripted_engine import ScriptedEngine
    from tests.unit.test_tui_snapshots import SPEC

    egress = SPEC.default_link.egress.model_copy(update={
        "rate": 5_000_000_000, "queue": SPEC.default_link.ingress.queue})  # fmt: skip
    spec = SPEC.model_copy(update={"default_link": SPEC.default_link.model_copy(
        update={"egress": egress})})  # fmt: skip

    async def scenario() -> list[str]:
        app = create_app(ScriptedEngine(spec, 40), tag="tui:test")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.stats_seen >= 80, 10, "the scripted stats")
            await pilot.pause(0.3)
            return screen_lines(app)

    lines = asyncio.run(scenario())
    upload = [line[40:] for line in lines]
    for label in ("In ", "Out ", "Lost ", "Q-drops ", "Delay "):
        assert any(row[2:].startswith(label) for row in upload), "\n".join(lines)
    limits = next(row for row in upload if row[2:].startswith("Q "))
    assert limits.rstrip(" │").endswith("pkts)"), "\n".join(lines)


@pytest.mark.parametrize("width", [80, 120, 200])
def test_ipv6_far_ends_keep_their_port_and_read_unambiguously(width: int) -> None:
    """An IPv6 far end is bracketed before its port; one too long for the column loses the
    middle of its address (`…`), never its port and protocol, and the table's tooltip
    lists it in full."""
    from textual.app import App, ComposeResult

    from engine.model.stats import DirectionStats, Talker
    from shaper_tui.widgets.flows_table import FlowsTable

    hosts = ["2001:db8:1234:5678:9abc:def0:1234:5678", "2001:db8:1234:5678:9abc:def0:4321:8765"]

    def sample(at: float) -> DirectionStats:
        return DirectionStats(direction="ingress", at=at, top_talkers=[
            Talker(address=host, protocol=6, port=443, packets=1, bytes=int(at * 1000) + n)
            for n, host in enumerate(hosts)])  # fmt: skip

    class TableApp(App[None]):
        def compose(self) -> ComposeResult:
            yield FlowsTable(id="flows")

    async def scenario() -> tuple[list[str], str]:
        app = TableApp()
        async with app.run_test(size=(width, 12)) as pilot:
            table = app.query_one(FlowsTable)
            table.add_sample(sample(0.0))
            table.add_sample(sample(1.0))
            table.refresh_rows()
            await pilot.pause()
            names = [str(table.get_row_at(n)[0]) for n in range(table.row_count)]
            return names, str(table.tooltip or "")

    names, tooltip = asyncio.run(scenario())
    assert len(set(names)) == 2, names
    for name, host in zip(sorted(names), hosts, strict=True):
        assert name.startswith("[2001:db8") and name.endswith("]:443 tcp"), names
        if name != f"[{host}]:443 tcp":
            assert "…" in name and name[-14:-9] == host[-5:] and host in tooltip, (names, tooltip)
