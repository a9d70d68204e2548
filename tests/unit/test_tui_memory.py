"""The TUI's memory stays flat while it is used (issue 35, item 17: 98 → 183 MB over 8 minutes).
What grew, found with tracemalloc over moves in Pilot: every focus move had Textual's footer
unmount and mount all its keys, and ~330 kB a move stayed behind (100 MB over 300 moves);
the footer is now rebuilt only when its keys change (widgets/steady_footer.py). Each open of
the help or the history then left ~2 MB behind: Textual's lru-cached
`StylesCache.get_inner_outer` kept the styles cache of every dead widget, with its rendered
lines (shaper_tui/textual_fixes.py)."""

from __future__ import annotations

import asyncio
import gc
import sys
import tracemalloc

from textual import events

from engine.model.spec import Spec
from engine.model.stats import DirectionStats
from shaper_tui.history import HISTORY_SECONDS, MAX_STEPS, SAMPLES_PER_SECOND, History
from tests.scripted_engine import script
from tests.unit.test_tui_snapshots import SPEC, app_and_ready

MOVES = 200
#: What the Python heap may grow by over MOVES moves (stats and caches settling): before,
#: it grew by about 66 MB.
ALLOWED_BYTES = 5_000_000


def test_focus_moves_leave_the_heap_flat() -> None:
    app, ready = app_and_ready()
    grown = 0

    async def scenario() -> None:
        nonlocal grown
        async with app.run_test(size=(200, 60)) as pilot:
            await ready(pilot)

            async def moves(count: int) -> None:
                for i in range(count):
                    key = "j" if i % 2 == 0 else "k"
                    app.post_message(events.Key(key, key))
                    await pilot.pause(0.01)
                await pilot.pause(0.5)

            await moves(40)  # caches filled, first renders done
            gc.collect()
            tracemalloc.start(1)
            try:
                before = tracemalloc.get_traced_memory()[0]
                await moves(MOVES)
                gc.collect()
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()

    asyncio.run(scenario())
    assert grown <= ALLOWED_BYTES, f"the heap grew {grown / 1e6:.1f} MB over {MOVES} moves"


#: Opens of the history and the help each (after two of each to warm up), and the blocks the
#: Python heap may gain over them: before the fixes it gained ~200k (~18 MB), ~13k with
#: the footer's keys still kept.
OPENS = 5
ALLOWED_BLOCKS = 5_000
#: What ten minutes of history may hold: of reports ~11 MB before, ~0.6 MB now; of changes
#: (one every half second) ~27 MB before, ~0.3 MB now.
FULL_HISTORY_BYTES = 2_000_000


def test_screens_opened_and_closed_leave_the_heap_flat() -> None:
    """Blocks, not tracemalloc: tracing makes the help's Markdown take ~30 s an open."""
    app, ready = app_and_ready()
    grown = 0

    async def scenario() -> None:
        nonlocal grown
        async with app.run_test(size=(200, 60)) as pilot:
            await ready(pilot)

            async def opens(count: int) -> None:
                for _ in range(count):
                    for key in ("g", "question_mark"):
                        await pilot.press(key)
                        await pilot.pause(0.05)
                        await pilot.press("escape")
                        await pilot.pause(0.05)
                await pilot.pause(0.3)

            await opens(2)
            gc.collect()
            before = sys.getallocatedblocks()
            await opens(OPENS)
            gc.collect()
            grown = sys.getallocatedblocks() - before

    asyncio.run(scenario())
    assert grown <= ALLOWED_BLOCKS, f"the heap gained {grown} blocks over {OPENS} opens of g and ?"


def test_a_full_history_is_small() -> None:
    """The history keeps ten minutes of reports (2400 lines): kept as decoded, ~4.7 kB each,
    they grew the real TUI by ~11 MB over its first ten minutes (the bench's RSS over 30
    minutes of use: +26.8 MB); of each only the figures drawn are kept now. Reports decoded
    from JSON as the TUI gets them (large counters are objects of their own)."""
    reports = [DirectionStats.model_validate_json(s.model_dump_json()) for s in script(6000)]
    history = History(clock=0.0)
    gc.collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.get_traced_memory()[0]
        for report in reports:  # ten a second per direction, as the engine reports
            history.sample(report, now=report.at)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(history.stats) >= HISTORY_SECONDS * SAMPLES_PER_SECOND * 2 - 4
    assert grown <= FULL_HISTORY_BYTES, f"a full history holds {grown / 1e6:.1f} MB"


def test_a_history_full_of_changes_is_small() -> None:
    """The history keeps a change per half second for ten minutes (1201): kept as specs
    (~22 kB each as decoded, in their steps) a flood of changes, a replay or a held key
    filled ~27 MB; of each only the rate and latency set each way are kept now."""
    specs = [
        SPEC.model_copy(update={"default_link": SPEC.default_link.model_copy(update={
            "egress": SPEC.default_link.egress.model_copy(update={"latency": float(i)})})})
        for i in range(MAX_STEPS)
    ]  # fmt: skip
    sent = [spec.model_dump_json() for spec in specs]
    history = History(clock=0.0)
    gc.collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n, text in enumerate(sent):  # decoded as the TUI gets each: a new spec
            history.spec(Spec.model_validate_json(text), now=n * 0.5)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(history.steps) == MAX_STEPS
    assert grown <= FULL_HISTORY_BYTES, f"a history full of changes holds {grown / 1e6:.1f} MB"
