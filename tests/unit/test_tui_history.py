"""The history screen (`g`, issue 35, item 5): the rate and latency set are drawn from the
start (the spec the TUI found, before any change), both directions are titled and their
scales read `20M`, `50ms`, `10/s` at 80x24, one burst does not flatten the rest (the scale is
clipped at the 95th percentile), and no mark or line is drawn for what did not happen (a
change is a `▴` on the axis, zero drops a bare floor)."""

from __future__ import annotations

import asyncio

from engine.model.stats import Drops
from shaper_tui.history import History
from shaper_tui.history_columns import Sample, SetPoint, clipped_top, columns
from shaper_tui.screens.history import HistoryScreen
from shaper_tui.widgets.time_axis import axis_line
from tests.scripted_engine import script
from tests.unit.test_tui_layout import screen_lines
from tests.unit.test_tui_snapshots import SPEC, app_and_ready


def test_the_spec_found_at_the_start_is_drawn_before_the_first_change() -> None:
    async def scenario() -> History:
        app, ready = app_and_ready()
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            return app.history

    history = asyncio.run(scenario())
    # No change was made: the spec the TUI attached to is kept, and drawn from the first
    # sample on (even one taken before the TUI had it: the spec in force at the start).
    assert list(history.steps) == [SetPoint.of(SPEC, history.steps[0].at)]
    lines = [Sample.of(s, s.at - 100.0) for s in script(40)]
    data = columns(lines, list(history.steps), "egress", 20)
    assert data.rate_set and all(v == 5e6 for v in data.rate_set), data.rate_set
    assert data.latency_set and all(v == 40 for v in data.latency_set)


def test_one_burst_does_not_flatten_the_rest() -> None:
    steady = [18e6] * 99
    assert clipped_top([*steady, 4.4e9], [20e6], 1000.0) == 20e6
    assert clipped_top([*steady, 4.4e9], [], 1000.0) == 20e6  # unlimited: the data's own
    assert clipped_top([0.0] * 50, [], 1.0) == 1.0


def history_lines(size: tuple[int, int]) -> list[str]:
    history = History(clock=0.0)
    history.spec(SPEC, now=0.0)
    for sample in script(300):
        if sample.direction == "egress":  # an upload that drops nothing
            sample = sample.model_copy(update={"total": sample.total.model_copy(
                update={"drops": Drops()})})  # fmt: skip
        history.sample(sample, now=sample.at - 100.0)
    egress = SPEC.default_link.egress.model_copy(update={"rate": 3_000_000})
    history.spec(SPEC.model_copy(update={"default_link": SPEC.default_link.model_copy(
        update={"egress": egress})}), now=10.0)  # fmt: skip

    async def scenario() -> list[str]:
        app, ready = app_and_ready()
        async with app.run_test(size=size) as pilot:
            await ready(pilot)
            app.push_screen(HistoryScreen(history))
            await pilot.pause(0.5)
            return screen_lines(app)

    return asyncio.run(scenario())


def test_at_80x24_titles_readable_scales_and_no_noise() -> None:
    lines = history_lines((80, 24))
    text = "\n".join(lines)
    assert "Download (ingress)" in text and "Upload (egress)" in text, text
    assert "e+" not in text and "e3" not in text and "┤" not in text
    labels = [line.split("│")[1].strip()[:11] for line in lines if "│" in line]
    assert "Rate    20M" in labels and "Rate     5M" in labels, labels
    assert any(label.startswith("Delay") and label.endswith("ms") for label in labels)
    # Zero drops: the upload's drops graph is a bare floor, not a line of marks.
    upload = lines[next(n for n, line in enumerate(lines) if "Upload (egress)" in line) :]
    first = next(n for n, line in enumerate(upload) if "Drops" in line)
    rows = upload[first : next(n for n in range(first, len(upload)) if "Changed" in upload[n])]
    cells = "".join(row.split("│")[1][12:].split()[0] for row in rows)
    assert set(cells) <= {"⠀", "⣀"} and "⣀" in rows[-1], "\n".join(rows)
    # The change at 10 s: a `▴` in the row over the axis (never over a tick's label), no
    # column of marks through the graphs.
    marks = [n for n, line in enumerate(lines) if "Changed" in line and "▴" in line]
    assert marks and all("now" in lines[n + 1] and "▴" not in lines[n + 1] for n in marks), text


def test_one_unit_an_axis_and_marks_that_cover_no_label() -> None:
    """Session 21 saw `-7m` beside `-390s`, and `▴` over the labels."""
    for span in (60.0, 170.0, 200.0, 390.0, 420.0, 600.0):
        for width in (52, 104, 170):
            line = axis_line(width, span / width, span)
            labels = line.split()
            units = {label[-1] for label in labels if label != "now"}
            assert len(units) <= 1 and (units <= {"m"} if span >= 180 else units <= {"s"}), line
            assert labels[-1] == "now" and len(labels) >= 3, line


def test_delay_is_never_below_the_latency_set() -> None:
    """The supervisor's state reports (no frame measured: `delay_samples` 0) came first in
    their half second and the history took the queue's delay for them: 1 ms, with 40 ms set."""
    history = History(clock=0.0)
    history.spec(SPEC, now=0.0)
    for n, sample in enumerate(script(300)):
        at = sample.at - 100.0
        measured = sample.model_copy(update={"delay_samples": 80, "delay_p50_ms": 42.0})
        if n % 5 == 0:  # a state report just before, with the last figures
            state = sample.model_copy(update={"delay_samples": 0, "total": sample.total.model_copy(
                update={"queue_delay_ms": 1.2})})  # fmt: skip
            history.sample(state, now=at)
        history.sample(measured, now=at + 0.01)
    for direction in ("ingress", "egress"):
        data = columns(list(history.stats), list(history.steps), direction, 100)
        assert data.delay and min(data.delay) >= 40.0, data.delay


def test_a_minute_of_unlimited_does_not_flatten_the_rate() -> None:
    """Ten minutes at 20 Mbit/s with a minute of `unlimited` (4.4 Gbit/s) and half a minute
    at 1 Gbit/s: the scale stays at 20M, the burst drawn over it in the warning colour."""
    values = [18e6] * 510 + [4.4e9] * 60 + [0.9e9] * 30
    sets = [20e6] * 510 + [1e9] * 30  # unlimited is 0 (left out by the screen)
    assert clipped_top(values, sets, 1000.0) == 20e6


def test_no_empty_row_above_the_footer_at_any_size() -> None:
    """Second new-user pass: at 80x24 and 120x40 the history left a blank row above the
    footer (an odd row kept out so both directions had the same height)."""
    for size in ((80, 24), (120, 40), (200, 60)):
        lines = history_lines(size)
        assert lines[-2].strip(), f"{size}: the row above the footer is empty"
