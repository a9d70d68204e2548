"""A flood of spec changes by another client (a `linkshaper set` loop: ~36,000 a minute, each
with a new source) through the real control hub of the scripted engine: the TUI keeps a
bounded history, shows the last spec, toasts a few times at most, and its memory stays
bounded (it grew from 90 to 455 MB and the screen went stale for minutes)."""

from __future__ import annotations

import asyncio
import threading
import time
import tracemalloc

from engine.model.spec import Spec
from engine.protocol.messages import SpecChanged
from shaper_tui.app import create_app
from shaper_tui.history import MAX_STEPS, History
from tests.scripted_engine import ScriptedEngine
from tests.tui_helpers import record_notifications, wait_until
from tests.unit.test_tui_snapshots import SPEC

CHANGES = 20_000
#: Memory the TUI may allocate and keep during the flood (tracemalloc, this process): the
#: history of all 20,000 specs alone took far more.
MEMORY_BOUND = 40 * 1024 * 1024
#: "Changed by …" toasts allowed: one every 2 s while the flood lasts, on a slow machine.
MAX_TOASTS = 12


def _spec(i: int) -> Spec:
    egress = SPEC.default_link.egress.model_copy(update={"latency": float(i % 5000)})
    link = SPEC.default_link.model_copy(update={"egress": egress})
    return SPEC.model_copy(update={"default_link": link})


def test_a_flood_of_changes_keeps_the_tui_bounded_and_shows_the_last() -> None:
    engine = ScriptedEngine(SPEC, samples=4)
    app = create_app(engine, tag="tui:flood")
    last = _spec(CHANGES - 1).model_copy(update={"default_link": _spec(4321).default_link})
    toasts: list[str] = []

    def flood() -> None:
        # As fast as the hub takes them; it drops what a subscriber's outbox (256) cannot
        # hold, so the last one comes a second later: a TUI that keeps up reads it at once.
        for i in range(CHANGES - 1):
            engine.hub.publish(SpecChanged(spec=_spec(i), source=f"flood:{i}", at=0.0))
        time.sleep(1.0)
        engine.hub.publish(SpecChanged(spec=last, source="flood:last", at=0.0))

    async def scenario() -> int:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.stats_seen >= 8, 10, "the scripted stats")
            record_notifications(app, toasts)
            tracemalloc.start()
            feeder = threading.Thread(target=flood, daemon=True)
            feeder.start()
            await wait_until(pilot, lambda: app.spec == last, 20, "the last spec shown")
            feeder.join(10)
            await pilot.pause()
            _now, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            return peak

    peak = asyncio.run(scenario())
    assert app.spec == last
    assert len(app.history.steps) <= MAX_STEPS
    assert app.history.steps[-1].spec.default_link == last.default_link
    assert 1 <= len(toasts) <= MAX_TOASTS, toasts[:5]
    assert len(app.__dict__.get("_told_changes", {})) <= 64
    assert peak < MEMORY_BOUND, f"{peak / 2**20:.1f} MiB"


def test_history_keeps_one_change_per_sample_interval_and_the_first() -> None:
    history = History(clock=0.0)
    history.spec(SPEC, now=0.0)
    for i in range(CHANGES):
        history.spec(_spec(i), now=1.0 + i * 0.003)  # 60 s of changes every 3 ms
    assert len(history.steps) <= 61 * 2 + 1
    assert history.steps[0].spec.default_link == SPEC.default_link
    assert history.steps[-1].spec.default_link == _spec(CHANGES - 1).default_link
    for i in range(200_000):
        history.spec(_spec(i), now=100.0 + i * 0.6)  # far apart, for longer than kept
    assert len(history.steps) <= MAX_STEPS
