"""Issue 34's leftovers at the doors: recordings opened safely (`run --record`, `record`, the
TUI's `r`), the TUI's replay read as it goes and stopped with its reason, and the TUI's typed
values judged by the engine's gate like every other door's.

The user who attacks a recording is `nobody` for real (`setpriv`), as in
tests/unit/test_root_files.py: it plants a symbolic link where root will write a recording, to a
root-owned 0600 file, which must stay as it was.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Label

from engine.lab.harness import EngineProcess
from engine.lab.lab import Lab
from engine.model.spec import Spec
from shaper_tui.app import ShaperApp, create_app
from shaper_tui.engine_source import SocketSource
from shaper_tui.refusals import plain_refusal
from shaper_tui.screens.path_prompt import PathPrompt
from shaper_tui.screens.value_prompt import ValuePrompt
from tests.cli_helpers import set_refusal
from tests.planted_links import (
    VICTIM_CONTENT,
    assert_untouched,
    needs_root,
    plant_links,
)
from tests.tui_helpers import wait_until

#: How long a process may take to start, stop or answer: far above what it needs.
PATIENCE = 15.0
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "engine.cli.main"]
TAG = "tui:leftovers"

StartEngine = Callable[..., EngineProcess]


def notifications(app: ShaperApp) -> list[str]:
    """Every notification `app` shows from now on, in order, but those about changes made by
    other clients, and a toast shown again after a prompt closed (it held the toasts on
    screen when it opened: held_toasts.py), which is no new word."""
    said: list[str] = []
    shown = app.notify

    def notify(message: str, **options: Any) -> None:
        # Not the word that another client changed the link: the test's own resets are one.
        other = message.startswith("Changed by") or "changes by others" in message
        if not other and message not in said:
            said.append(message)
        shown(message, **options)

    app.notify = notify  # type: ignore[method-assign]
    return said


# --- 1. recordings are opened safely -----------------------------------------------------------


@pytest.mark.lab
@needs_root
def test_run_record_refuses_a_link_planted_at_its_path(
    lab: Lab, shared_dir: Path, victim: Path
) -> None:
    """`linkshaper run ... --record /shared/session.jsonl` as root: a link there is refused in
    one line naming the path, before anything is forwarded; the linked file is left alone."""
    link = shared_dir / "session.jsonl"
    plant_links([link], victim)
    engine = EngineProcess(lab, shared_dir, Spec(), "spec.json", extra=("--record", str(link)))
    try:
        deadline = time.monotonic() + PATIENCE
        while engine.process.poll() is None and victim.read_bytes() == VICTIM_CONTENT:
            assert time.monotonic() < deadline, "the engine neither refused nor wrote"
            time.sleep(0.05)
        assert_untouched(victim)
        assert engine.process.wait(PATIENCE) == 1
        assert engine.stderr().strip().splitlines() == [
            f"linkshaper: --record: {link}: a symbolic link, not followed"
        ], engine.stderr()
        assert link.is_symlink()
    finally:
        engine.close()


@pytest.mark.lab
@needs_root
def test_record_refuses_a_link_planted_at_its_file(
    start_engine: StartEngine, shared_dir: Path, victim: Path
) -> None:
    """`linkshaper record /shared/session.jsonl` as root: the same, from the command line."""
    engine = start_engine(Spec())
    link = shared_dir / "session.jsonl"
    plant_links([link], victim)
    done = subprocess.run(
        [*CLI, "record", "--control", engine.control, str(link), "--seconds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=PATIENCE,
    )  # fmt: skip
    assert_untouched(victim)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"linkshaper: {link}: a symbolic link, not followed"
    ], done.stderr


# --- 2. the TUI's replay is bounded and says why it stopped -------------------------------------

#: A timeline the engine refuses at its second step (each step is fine on its own: the file
#: the trace names does not exist, which only the engine's gate finds).
REFUSED_STEPS = (
    {"at": 0, "set": {"egress.latency": "7ms"}},
    {"at": 0.2, "set": {"egress.trace": "/nonexistent/linkshaper-trace"}},
    {"at": 0.4, "set": {"egress.latency": "9ms"}},
)
#: The long timeline: this many steps, one a second (so only the first few come due while the
#: test looks). Held whole, as `read_timeline` held it, it took ~160 MB; read as it goes, ~1 MB.
LONG_TIMELINE_STEPS = 200_000
#: What starting its replay may add to the TUI's memory: the file's reader, the first steps,
#: the pane, with room for the allocator's noise; far under what holding the steps took.
REPLAY_START_BYTES = 40 * 1024 * 1024


def lines_of(*steps: dict[str, Any]) -> str:
    return "".join(json.dumps(step) + "\n" for step in steps)


def engine_spec(engine: EngineProcess) -> Spec:
    with engine.client() as client:
        return client.get_spec()


async def replay_from_prompt(app: ShaperApp, pilot: Pilot[Any], path: Path) -> None:
    """`t`, the path, Enter: as a user starts a replay."""
    await pilot.press("t")
    await wait_until(pilot, lambda: isinstance(app.screen, PathPrompt), what="the prompt")
    app.screen.query_one(Input).value = str(path)
    await pilot.press("enter")


async def until_attached(app: ShaperApp, pilot: Pilot[Any]) -> None:
    await wait_until(pilot, lambda: app.link.attached, PATIENCE, "attached")


@pytest.mark.lab
def test_a_refused_step_stops_the_tuis_replay_and_its_pane_says_why(
    start_engine: StartEngine, tmp_path: Path
) -> None:
    engine = start_engine({})
    timeline = tmp_path / "refused.jsonl"
    timeline.write_text(lines_of(*REFUSED_STEPS))

    async def scenario() -> tuple[str, list[str]]:
        app = create_app(SocketSource(engine.control), tag=TAG, record_dir=str(tmp_path))
        toasts = notifications(app)
        async with app.run_test(size=(120, 32)) as pilot:
            await until_attached(app, pilot)
            await replay_from_prompt(app, pilot, timeline)
            pane = app.timeline_pane
            await wait_until(
                pilot, lambda: pane.status is not None and pane.status.finished, PATIENCE, "end"
            )
            await wait_until(pilot, lambda: app.check_action("timeline", ()) is True)  # over
            await pilot.pause(0.1)  # the worker's end and its message reach the app
            return str(pane.render()), toasts

    shown, said = asyncio.run(scenario())
    assert shown.startswith("■ replay stopped refused.jsonl: step 2 (at 0.2 s): "), shown
    assert "trace" in shown and "replay done" not in shown, shown
    assert [t for t in said if "replay stopped" in t] == [
        "replay stopped: " + shown.removeprefix("■ replay stopped refused.jsonl: ")
    ], said
    egress = engine_spec(engine).default_link.egress
    assert egress.latency == 7 and egress.trace is None  # step 3 never came


@pytest.mark.lab
def test_the_tuis_replay_reads_a_long_timeline_as_it_goes(
    start_engine: StartEngine, tmp_path: Path
) -> None:
    """Before, the prompt's check and the replay each read the whole file into memory and the
    replay held every step (200,000 steps: ~160 MB, kept while it ran)."""
    engine = start_engine({})
    timeline = tmp_path / "long.jsonl"
    with timeline.open("w") as file:
        for second in range(LONG_TIMELINE_STEPS):
            file.write(json.dumps({"at": second, "set": {"egress.latency": second % 1000}}) + "\n")
    process = psutil.Process()

    async def scenario() -> int:
        app = create_app(SocketSource(engine.control), tag=TAG, record_dir=str(tmp_path))
        async with app.run_test(size=(120, 32)) as pilot:
            await until_attached(app, pilot)
            await pilot.pause(0.2)
            before = process.memory_info().rss
            await replay_from_prompt(app, pilot, timeline)
            pane = app.timeline_pane
            await wait_until(
                pilot, lambda: pane.status is not None and pane.status.position >= 2, PATIENCE
            )
            grown = process.memory_info().rss - before
            assert f"step 2/{LONG_TIMELINE_STEPS}" in str(pane.render())
            assert engine_spec(engine).default_link.egress.latency == 1
            await pilot.press("x")
            return grown

    grown = asyncio.run(scenario())
    assert grown < REPLAY_START_BYTES, f"{grown / 1e6:.0f} MB more while replaying"


# --- 3. no door keeps a check of its own: the TUI's typed values go to the gate ----------------

#: Values past a slider's end, typed in the TUI and given to `linkshaper set`: the engine's
#: gate alone says which are allowed (the slider stops at 10 Gbit/s, 10 s, 100 %; the model
#: at 100 Gbit/s, 1 h, 100 %), and the two doors must end alike.
PAST_THE_SLIDERS = (
    ("rate", "99gbit", 99_000_000_000),  # in force (the TUI shows it as unlimited)
    ("latency", "30s", 30_000.0),  # in force
    ("latency", "120min", None),  # refused: more than an hour
    ("loss", "150%", None),  # refused: more than all
    ("queue", "0", None),  # refused: a queue holds a packet at least
    ("jitter_strength", "1.5", None),  # refused: more than all of the jitter
)
#: The spec each case starts from: a bursty loss, whose control maps a mean loss to a chain.
DOORS_BASE = {"default_link": {"egress": {"rate": "2mbit", "latency": "5ms", "burst_loss": {
    "p_enter": 0.01, "p_exit": 0.25, "loss_in_burst": 1.0, "loss_outside": 0.0}}}}  # fmt: skip


def egress_value(spec: Spec, field: str) -> object:
    link = spec.default_link.egress
    return link.queue.packets if field == "queue" else getattr(link, field)


@pytest.mark.lab
def test_a_value_past_a_sliders_end_ends_as_linkshaper_set_ends(
    start_engine: StartEngine, tmp_path: Path
) -> None:
    """Before, the TUI refused 99gbit and 30s (`outside 0 to ...`), which `set` puts in force,
    and kept its refusals in its own words."""
    engine = start_engine(DOORS_BASE)
    base = engine_spec(engine)
    outcomes: list[tuple[str, str, str | None, str | None]] = []

    def reset() -> None:
        with engine.client() as client:
            client.set_spec(base, source="test")

    async def scenario() -> None:
        app = create_app(SocketSource(engine.control), tag=TAG, record_dir=str(tmp_path))
        toasts = notifications(app)
        async with app.run_test(size=(120, 40)) as pilot:
            await until_attached(app, pilot)
            for field, text, in_force in PAST_THE_SLIDERS:
                reset()
                await wait_until(pilot, lambda: app.spec == base, PATIENCE, "the base shown")
                said = len(toasts)
                await app.action_edit(f"egress-{field}")
                await wait_until(pilot, lambda: isinstance(app.screen, ValuePrompt), what="prompt")
                await pilot.press(*text, "enter")

                def ended(
                    field: str = field, in_force: object = in_force, said: int = said
                ) -> bool:
                    if isinstance(app.screen, ValuePrompt):  # refused in the prompt: no door's
                        error = str(app.screen.query_one("#error", Label).render())
                        raise AssertionError(f"the TUI refused it itself: {error}")
                    if in_force is not None:
                        return egress_value(engine_spec(engine), field) == in_force
                    return len(toasts) > said

                await wait_until(pilot, ended, PATIENCE, f"{field}={text} to end")
                tui = None if in_force is not None else toasts[said]
                if in_force is None:
                    await pilot.pause(0.2)
                    assert engine_spec(engine) == base and len(toasts) == said + 1, toasts
                reset()
                cli = set_refusal(
                    engine.control, f"egress.{field.replace('queue', 'queue.packets')}={text}"
                )
                if cli is None:
                    assert egress_value(engine_spec(engine), field) == in_force
                else:
                    assert engine_spec(engine) == base
                outcomes.append((field, text, tui, cli))

    asyncio.run(scenario())
    for field, text, tui, cli in outcomes:
        # The same reason; the field named as the TUI's control (`Upload Latency`).
        assert tui == (cli if cli is None else plain_refusal(cli)), (field, text, tui, cli)
    refused = {text: tui for _, text, tui, _ in outcomes if tui is not None}
    assert refused["120min"] == ("Upload Latency: must be at most 3600 s (got 7200 s)")
    assert set(refused) == {"120min", "150%", "0", "1.5"}
