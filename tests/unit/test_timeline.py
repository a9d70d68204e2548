"""Timelines: parsing and validation with line numbers, patches, ramps and the replay plan,
all in virtual time (no clock involved)."""

from __future__ import annotations

import itertools
import json

import pytest

from engine.model.spec import Spec
from engine.timelines.parsing import parse_timeline
from engine.timelines.ramps import interpolate
from engine.timelines.replay import RAMP_INTERVAL, plan
from engine.timelines.timeline import TimelineError


def spec(**egress: object) -> dict[str, object]:
    return {"default_link": {"ingress": {}, "egress": egress}}


def lines(*items: object) -> list[str]:
    return [item if isinstance(item, str) else json.dumps(item) for item in items]


def test_a_hand_written_timeline_with_every_kind_of_line() -> None:
    timeline = parse_timeline(
        lines(
            {"linkshaper_timeline": 1, "note": "hand-written"},
            "# a comment, then a blank line",
            "",
            {"at": 0, "spec": spec(rate="10mbit")},
            {"at": 2, "set": {"egress.latency": "80ms"}},
            {"at": 1.5, "stats": {"direction": "egress", "at": 3.0}},
            {"at": 5, "spec": spec(rate="1mbit"), "ramp": 30},
        )
    )
    assert timeline.header is not None and len(timeline.steps) == 3 and len(timeline.stats) == 1
    assert timeline.duration == 35
    resolved = timeline.resolve(Spec())
    assert resolved[1].spec.default_link.egress.rate == 10_000_000  # the patch builds on step 1
    assert resolved[1].spec.default_link.egress.latency == 80
    assert resolved[2].ramp == 30


@pytest.mark.parametrize(
    ("bad_line", "words"),
    [
        ("{not json", "line 2: not JSON"),
        (json.dumps({"at": 1, "spec": spec(loss=2)}), "line 2: spec.default_link.egress.loss"),
        (
            json.dumps({"at": 1, "set": {"egress.latency": "soon"}}),
            "line 2: set: default_link.egress.latency: not a duration",
        ),
        (json.dumps({"at": -1, "spec": spec()}), "line 2: at"),
        (json.dumps({"at": 1, "spec": spec(), "colour": "red"}), "line 2: colour"),
        (json.dumps({"at": 1}), 'line 2: a line needs "spec", "set" or "stats"'),
        (json.dumps({"at": 0.5, "spec": spec()}), "line 2: at: 0.5 comes before 1"),
        (json.dumps({"linkshaper_timeline": 1}), "line 2: the header must be the first line"),
        (json.dumps({"linkshaper_timeline": 99}), "line 2: linkshaper_timeline"),
    ],
)
def test_a_bad_line_is_named_with_its_field(bad_line: str, words: str) -> None:
    with pytest.raises(TimelineError, match=words.replace("(", r"\(")):
        parse_timeline([json.dumps({"at": 1, "spec": spec()}), bad_line], name="t.jsonl")


def test_interpolation_is_linear_in_every_numeric_field() -> None:
    start = Spec.model_validate(spec(rate="10mbit", latency="10ms", loss=0.0))
    end = Spec.model_validate(
        spec(rate="2mbit", latency="50ms", loss=0.1, jitter_distribution="normal")
    )
    half = interpolate(start, end, 0.5).default_link.egress
    assert half.rate == 6_000_000 and half.latency == 30 and half.loss == pytest.approx(0.05)
    assert half.jitter_distribution == "normal"  # non-numeric fields take the target at once
    assert interpolate(start, end, 1.0) == end
    assert interpolate(start, end, 0.0).default_link.egress.rate == 10_000_000


def test_a_ramp_is_planned_at_least_ten_times_a_second_and_ends_on_target() -> None:
    timeline = parse_timeline(
        lines(
            {"at": 0, "spec": spec(rate="10mbit")},
            {"at": 1, "spec": spec(rate="1mbit"), "ramp": 30},
        )
    )
    events = list(plan(timeline.resolve(Spec()), Spec()))
    ramp = [e for e in events if e.step == 1]
    assert ramp[-1].final and ramp[-1].at == 31 and ramp[-1].spec.default_link.egress.rate == 1e6
    gaps = [b.at - a.at for a, b in itertools.pairwise(ramp)]
    assert max(gaps) <= 0.1 + 1e-9 and RAMP_INTERVAL <= 0.1
    rates = [e.spec.default_link.egress.rate for e in ramp]
    assert rates == sorted(rates, reverse=True) and rates[0] == 10_000_000


def test_a_step_that_comes_during_a_ramp_cuts_it_short() -> None:
    timeline = parse_timeline(
        lines(
            {"at": 0, "spec": spec(rate="10mbit"), "ramp": 10},
            {"at": 2, "spec": spec(rate="5mbit")},
        )
    )
    base = Spec.model_validate(spec(rate="20mbit"))
    events = list(plan(timeline.resolve(base), base))
    assert all(e.at < 2 for e in events if e.step == 0)
    assert not any(e.final for e in events if e.step == 0)
    assert events[-1].at == 2 and events[-1].spec.default_link.egress.rate == 5_000_000


@pytest.mark.parametrize(
    "line",
    [
        '{"at": 1e400, "set": {"egress.latency": 5}}',
        '{"at": NaN, "set": {"egress.latency": 5}}',
        '{"at": 1, "ramp": Infinity, "spec": {}}',
        '{"at": 1, "spec": {"egress": {"rate": "1e400mbit"}}}',
        "[" * 10_000,
    ],
)
def test_a_line_no_replay_could_use_is_an_error_not_a_crash(line: str) -> None:
    with pytest.raises(TimelineError, match=r"^t line 1: "):
        parse_timeline([line], name="t")


def test_ramps_move_the_new_numeric_fields_and_switch_the_rest_at_once() -> None:
    start = Spec.model_validate({"egress": {
        "duplicate": 0.0, "reorder": 0.1, "loss_correlation": 0.0, "gap": 1,
        "queue": {"discipline": "codel", "target": 5, "packets": 100},
        "slot": {"min_delay": 10, "max_delay": 20},
    }})  # fmt: skip
    end = Spec.model_validate({"egress": {
        "duplicate": 0.2, "reorder": 0.3, "loss_correlation": 0.5, "gap": 5,
        "queue": {"discipline": "codel", "target": 15, "packets": 300},
        "slot": {"min_delay": 30, "max_delay": 40},
        "outage": {"period": 1000, "down": 100},
    }})  # fmt: skip
    half = interpolate(start, end, 0.5).default_link.egress
    assert (half.duplicate, half.reorder, half.loss_correlation) == pytest.approx((0.1, 0.2, 0.25))
    assert (half.queue.target, half.queue.packets) == (10, 200)
    assert half.slot is not None and (half.slot.min_delay, half.slot.max_delay) == (20, 30)
    assert half.gap == 5 and half.outage == end.default_link.egress.outage  # at once
    other = Spec.model_validate({"egress": {"queue": {"discipline": "pie", "target": 30}}})
    switched = interpolate(start, other, 0.5).default_link.egress.queue
    assert switched.discipline == "pie" and switched.target == 30  # another AQM's: at once
