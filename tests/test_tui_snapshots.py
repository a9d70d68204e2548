"""How the TUI looks: SVG snapshots (pytest-textual-snapshot, Textual pinned in
pyproject.toml). Update them with `pytest tests/test_tui_snapshots.py --snapshot-update` after
a deliberate change, and look at the report before committing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot

from engine.model.spec import Spec
from shaper_tui.app import ShaperApp, create_app
from tests.scripted_engine import ScriptedEngine
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


def test_main_screen_200x60(snap_compare: SnapCompare) -> None:
    """Room for graphs three rows tall (TALLER_GRAPHS_AT)."""
    app, ready = app_and_ready()
    assert snap_compare(app, terminal_size=(200, 60), run_before=ready)


def test_presets_picker(snap_compare: SnapCompare) -> None:
    app, ready = app_and_ready()

    async def open_presets(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("p")

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
