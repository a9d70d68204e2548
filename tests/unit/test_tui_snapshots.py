"""How the TUI looks: SVG snapshots (pytest-textual-snapshot, Textual pinned in
pyproject.toml). Update them with `pytest tests/unit/test_tui_snapshots.py --snapshot-update` after
a deliberate change, and look at the report before committing."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from engine.model.fates import FORWARDED, LOSS, QUEUE_FULL, FateRecord
from engine.model.spec import Spec
from shaper_tui.app import ShaperApp, create_app
from shaper_tui.history import History
from shaper_tui.packet_feed import SeenFrame
from shaper_tui.screens.history import HistoryScreen
from shaper_tui.screens.packets import PacketsScreen
from tests.frames_helpers import tcp_frame, udp_frame
from tests.scripted_engine import ScriptedEngine, script
from tests.tui_helpers import wait_until

SnapCompare = Callable[..., bool]

SPEC = Spec.model_validate(
    {
        "default_link": {
            "ingress": {"rate": "20mbit", "loss": "0.5%", "latency": "40ms", "jitter": "10ms",
                        "jitter_distribution": "normal"},
            "egress": {"rate": "5mbit", "latency": "40ms", "queue": {"packets": 100}},
        },
        "flows": [
            {"label": "web", "flow": {"ip": 0, "protocol": "tcp", "port_min": 443,
                                      "port_max": 443},
             "link": {"ingress": {"rate": "100mbit"}, "egress": {"rate": "100mbit"}}},
        ],
    }
)  # fmt: skip


def app_and_ready(samples: int = 40) -> tuple[ShaperApp, Callable[[Pilot[Any]], Awaitable[None]]]:
    app = create_app(ScriptedEngine(SPEC, samples), tag="tui:snapshot")

    async def ready(pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: app.stats_seen >= 2 * samples, 10, "the scripted stats")
        app.flows.refresh_rows()
        await pilot.pause()

    return app, ready


def test_main_screen_80x24(snap_compare: SnapCompare) -> None:
    app, ready = app_and_ready()
    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_main_screen_120x40(snap_compare: SnapCompare) -> None:
    """The graphs take the spare rows, the flows table the rows it needs."""
    app, ready = app_and_ready()
    assert snap_compare(app, terminal_size=(120, 40), run_before=ready)


def test_main_screen_200x60(snap_compare: SnapCompare) -> None:
    """The graphs take the spare rows (eight or more each), a time axis under them."""
    app, ready = app_and_ready()
    assert snap_compare(app, terminal_size=(200, 60), run_before=ready)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_advanced_settings(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """`a` shows each direction's rarer settings under the basic ones (at 80x24 the screen
    scrolls to the focused control); here the upload's queue is fq_codel with ECN and the
    download has a periodic outage."""
    app, ready = app_and_ready()

    async def advanced(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("a")
        app.panels["egress"].query_one("#egress-discipline").focus()
        await pilot.press("right", "right", "right")  # tail_drop -> fq_codel
        await pilot.press("down", "right")  # ECN on
        app.panels["ingress"].query_one("#ingress-outage").focus()
        await pilot.press("right")  # blocked, 500 ms every 5 s
        # The outage's sliders follow from its mode: wait until they show it.
        every = app.panels["ingress"].controls["outage_every"]
        ecn = app.panels["egress"].controls["ecn"]
        await wait_until(pilot, lambda: every.value == 5000 and ecn.value == "on", 10,
                         "the changes shown")  # fmt: skip
        await pilot.wait_for_scheduled_animations()  # the scroll to the focused control
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=advanced)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_connection_faults(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """The connection faults under the other advanced settings: the download's Blackhole
    switched on (after 10 s) with a bytes trigger typed, the upload's off (`off` each)."""
    app, ready = app_and_ready()

    async def faults(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("a")
        app.panels["ingress"].query_one("#ingress-blackhole").focus()
        await pilot.press("right", "down", "enter", *"100kB", "enter", "down")
        after = app.panels["ingress"].controls["blackhole_after_bytes"]
        await wait_until(pilot, lambda: after.value == 100_000, 10, "the bytes shown")
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=faults)


def test_presets_picker(snap_compare: SnapCompare) -> None:
    app, ready = app_and_ready()

    async def open_presets(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("p")
        await pilot.pause()
        # (a blinking cursor is drawn or not by when the picture is taken: the snapshot flaked)
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=open_presets)


def test_presets_a_realistic_one_says_where_its_figures_come_from(
    snap_compare: SnapCompare,
) -> None:
    app, ready = app_and_ready()

    async def open_presets(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("p", *"satellite", "down")

    assert snap_compare(app, terminal_size=(100, 30), run_before=open_presets)


def test_help(snap_compare: SnapCompare) -> None:
    app, ready = app_and_ready()

    async def open_help(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("question_mark")

    assert snap_compare(app, terminal_size=(100, 30), run_before=open_help)


def test_exact_value_prompt_with_an_error(snap_compare: SnapCompare) -> None:
    app, ready = app_and_ready()

    async def bad_value(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("down", "down", "down", "enter", *"fast", "enter")

    assert snap_compare(app, terminal_size=(80, 24), run_before=bad_value)


def test_blocked_link(snap_compare: SnapCompare) -> None:
    app, ready = app_and_ready()

    async def block(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("b")
        await wait_until(pilot, lambda: app.spec.default_link.egress.rate == 0)
        app.clear_notifications()

    assert snap_compare(app, terminal_size=(80, 24), run_before=block)


class FixedFeed:
    """What a PacketFeed shows, fixed: a snapshot of the view must not depend on traffic."""

    lost = 3
    error = ""

    def __init__(self) -> None:
        heads = [
            (FORWARDED, "egress", tcp_frame(sport=40000, dport=443)),
            (LOSS, "ingress", udp_frame(src="198.18.0.2", dst="198.18.0.1", sport=3478)),
            (QUEUE_FULL, "ingress", tcp_frame(src="198.18.0.2", dst="198.18.0.1", sport=443)),
            (FORWARDED, "ingress", udp_frame(src="198.18.0.2", dst="198.18.0.1", sport=53)),
        ]
        self.frames = [
            SeenFrame(direction, FateRecord(1_700_000_000.125 + i / 8, fate,
                                            0.0405 if fate == FORWARDED else 0.0, 0.0005,
                                            "default", len(frame) - 10, frame[10:106]), i)
            for i, (fate, direction, frame) in enumerate(heads)
        ]  # fmt: skip

    def latest(self) -> list[SeenFrame]:
        return self.frames

    def read(self) -> None:
        pass  # nothing comes: the frames are fixed

    def stop(self) -> None:
        pass


def test_packets_view(snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    app, ready = app_and_ready()

    async def open_packets(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        app.push_screen(PacketsScreen(FixedFeed()))  # type: ignore[arg-type]
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=open_packets)
    monkeypatch.delenv("TZ")
    time.tzset()


def test_history_screen(snap_compare: SnapCompare) -> None:
    app, ready = app_and_ready()
    history = History(clock=0.0)
    history.spec(SPEC, now=0.0)
    for sample in script(60):
        history.sample(sample, now=sample.at - 100.0)  # the script starts at 100 s
    history.spec(SPEC.model_copy(update={"default_link": SPEC.default_link.model_copy(
        update={"egress": SPEC.default_link.egress.model_copy(update={"rate": 3_000_000})})}),
        now=3.0)  # fmt: skip

    async def open_history(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        app.push_screen(HistoryScreen(history))
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(100, 32), run_before=open_history)
