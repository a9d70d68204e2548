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
