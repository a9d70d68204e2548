"""The TUI's queue of stats reports is bounded: an app that falls behind the engine's reports
(a loaded machine: 3,300 were seen waiting, each a whole report) skips reports rather than
hold each (issue 35: memory flat; the brief: every resource has a bound)."""

from __future__ import annotations

from textual.message import Message

from engine.model.stats import DirectionStats, LinkStats
from engine.protocol.messages import StatsReport
from shaper_tui.engine_link import MAX_STATS_WAITING, EngineLink
from shaper_tui.engine_source import SocketSource
from shaper_tui.messages import StatsArrived


def report(at: float) -> StatsReport:
    return StatsReport(
        stats=DirectionStats(direction="egress", at=at, pid=1, total=LinkStats(bytes_out=1))
    )


def test_reports_the_app_has_not_taken_are_bounded_and_the_rest_skipped() -> None:
    posted: list[Message] = []
    link = EngineLink(SocketSource("/nonexistent/engine.sock"), posted.append, "tui:test")
    for n in range(10 * MAX_STATS_WAITING):
        link._post_stats(report(float(n)))
    assert len(posted) == MAX_STATS_WAITING
    assert link.stats_skipped == 9 * MAX_STATS_WAITING
    for _ in range(5):  # the app takes five: five more may wait
        link.stats_taken()
    for n in range(10):
        link._post_stats(report(1000.0 + n))
    assert len(posted) == MAX_STATS_WAITING + 5
    assert all(isinstance(m, StatsArrived) for m in posted)
    assert [m.stats.at for m in posted[-5:]] == [1000.0 + n for n in range(5)]  # type: ignore[attr-defined]


def test_a_report_the_app_refuses_to_take_frees_its_place() -> None:
    link = EngineLink(SocketSource("/nonexistent/engine.sock"), lambda _m: False, "tui:test")
    for n in range(3 * MAX_STATS_WAITING):
        link._post_stats(report(float(n)))
    assert link.stats_skipped == 0


def test_a_burst_of_changes_shows_the_newest_and_hands_each_to_a_recording() -> None:
    """CI (s23): a replay's steps that came while the app was busy were handed over as the
    newest alone, and the recording of the session lost a `replay` step."""
    from engine.model.spec import Spec
    from shaper_tui.messages import SpecArrived

    posted: list[Message] = []
    link = EngineLink(SocketSource("/nonexistent/engine.sock"), posted.append, "tui:test")
    steps = [SpecArrived(Spec.model_validate({"egress": {"latency": ms}}), "replay")
             for ms in (11, 22, 33)]  # fmt: skip
    for step in steps:
        link._offer(step)
    assert posted == [steps[0]]  # the app is told once; it takes the burst when it can
    newest, burst = link.take_spec(steps[0])
    assert newest is steps[-1] and burst == steps
    alone = SpecArrived(Spec(), "set")
    link._offer(alone)
    assert link.take_spec(alone) == (alone, [alone])  # nothing twice
