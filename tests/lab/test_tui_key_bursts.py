"""Keys typed in one burst, as a real terminal delivers them: tmux `send-keys` of a whole
sequence in one call writes every byte at once, so the TUI reads them in one go. None may be
lost or run out of order, also when one of them opens a screen (a prompt, the presets) and the
rest are meant for it."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from textual import events

from engine.lab.harness import EngineProcess
from engine.model.spec import UNLIMITED_RATE, Spec
from shaper_tui.app import create_app
from shaper_tui.engine_source import SocketSource
from shaper_tui.screens.packets import PacketsScreen
from tests import ROOT
from tests.lab.test_tui_terminal import Tmux
from tests.tui_helpers import wait_until

pytestmark = pytest.mark.lab

StartEngine = Callable[..., EngineProcess]


@pytest.fixture
def terminal(start_engine: StartEngine) -> Iterator[tuple[Tmux, EngineProcess]]:
    """`tui` in a tmux of its own, attached to an engine in the lab, passing everything."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (make install)")
    engine = start_engine({"ingress": {}, "egress": {}})
    tmux = Tmux()
    tmux.socket = f"linkshaper-keys-{os.getpid()}"
    command = (
        f"cd {ROOT} && TERM=xterm exec {sys.executable} -m shaper_tui --control {engine.control}"
    )
    try:
        tmux("new-session", "-d", "-s", "tui", "-x", "100", "-y", "32", command)
        tmux.wait_for("attached", timeout=30)  # a loaded 2-core machine
        yield tmux, engine
    finally:
        tmux.close()


def burst(tmux: Tmux, *keys: str) -> None:
    """Every key in ONE send-keys call: one write, one read on the TUI's side."""
    tmux("send-keys", "-t", "tui", *keys)


def wait_spec(engine: EngineProcess, ready: Callable[[Spec], bool], what: str) -> Spec:
    """The engine's spec once `ready` holds (5 s at most: a change shows within a second)."""
    deadline = time.monotonic() + 5
    with engine.client() as client:
        while True:
            spec = client.get_spec()
            if ready(spec):
                return spec
            assert time.monotonic() < deadline, f"{what}; the engine has {spec.default_link}"
            time.sleep(0.05)


def settle(tmux: Tmux) -> None:
    """Focus on the download Latency, known: its prompt opened and closed (keys in turn)."""
    burst(tmux, "Down", "Down", "Down", "Enter")
    tmux.wait_for("Latency (now")
    burst(tmux, "Escape")
    deadline = time.monotonic() + 5
    while "Latency (now" in tmux.screen():
        assert time.monotonic() < deadline, "the prompt did not close"
        time.sleep(0.05)


def test_keys_typed_right_after_enter_reach_the_prompt(
    terminal: tuple[Tmux, EngineProcess],
) -> None:
    tmux, engine = terminal
    settle(tmux)
    burst(tmux, "Enter", "8", "0", "m", "s", "Enter")
    spec = wait_spec(
        engine, lambda s: s.default_link.ingress.latency != 0, "the latency never changed"
    )
    assert spec.default_link.ingress.latency == 80


def test_moves_before_enter_run_first(terminal: tuple[Tmux, EngineProcess]) -> None:
    """`j j j Enter 6 0 m s Enter`: the prompt is the third control's (Latency), and it gets
    every digit."""
    tmux, engine = terminal
    burst(tmux, "j", "j", "j", "Enter", "6", "0", "m", "s", "Enter")
    spec = wait_spec(
        engine, lambda s: s.default_link.ingress.latency != 0, "the latency never changed"
    )
    assert spec.default_link.ingress.latency == 60
    assert spec.default_link.ingress.rate == spec.default_link.egress.rate  # untouched


def test_tab_eleven_times_then_a_value(terminal: tuple[Tmux, EngineProcess]) -> None:
    """What the container test types: 11 Tabs reach the upload Latency (8 controls a panel)."""
    tmux, engine = terminal
    burst(tmux, *["Tab"] * 11, "Enter", "4", "0", "m", "s", "Enter")
    spec = wait_spec(
        engine, lambda s: s.default_link.egress.latency != 0, "the latency never changed"
    )
    assert spec.default_link.egress.latency == 40
    assert spec.default_link.ingress.latency == 0


def test_presets_filter_typed_ahead(terminal: tuple[Tmux, EngineProcess]) -> None:
    """`p fios Enter`: the filter gets every letter, Enter applies the one preset it leaves."""
    tmux, engine = terminal
    burst(tmux, "p", "f", "i", "o", "s", "Enter")
    spec = wait_spec(
        engine, lambda s: s.default_link.ingress.rate != UNLIMITED_RATE, "no preset was applied"
    )
    assert spec.default_link.ingress.rate == 20_000_000  # WPT FIOS: 20 Mbit/s down
    assert spec.default_link.egress.rate == 5_000_000


def test_a_confirm_answered_in_the_same_burst(terminal: tuple[Tmux, EngineProcess]) -> None:
    """`R y Enter 3mbit Enter`: reset asks, y answers, then the rate prompt gets its value."""
    tmux, engine = terminal
    burst(tmux, "R", "y", "Enter", "3", "m", "b", "i", "t", "Enter")
    spec = wait_spec(
        engine, lambda s: s.default_link.ingress.rate != UNLIMITED_RATE, "the rate never changed"
    )
    assert spec.default_link.ingress.rate == 3_000_000


def test_packets_view_keys_typed_right_after_v(start_engine: StartEngine) -> None:
    """`v 1 d` as one read (Pilot, keys posted at once): the view opens (a capture of its
    own), then its own `1` (dropped only) and `d` (download only) act in it."""
    engine = start_engine({"ingress": {}, "egress": {}})

    async def scenario() -> tuple[str, str]:
        app = create_app(SocketSource(engine.control), tag="tui:test")
        async with app.run_test(size=(120, 32)) as pilot:
            await wait_until(pilot, lambda: app.link.attached, 30, "attach")
            for key in ("v", "1", "d"):
                app.post_message(events.Key(key, key))
            await wait_until(pilot, lambda: isinstance(app.screen, PacketsScreen), 15, "view")
            screen = app.screen
            assert isinstance(screen, PacketsScreen)
            await wait_until(pilot, lambda: screen.direction != "both", 15, "d in the view")
            await pilot.pause(0.5)
            return screen.direction, str(screen.filters.render())

    direction, filters = asyncio.run(scenario())
    assert direction == "download"  # the first after both (the panels' word)
    assert "dropped" in filters
