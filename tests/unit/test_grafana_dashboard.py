"""The Grafana dashboard (deploy/grafana/linkshaper.json) against what the engine exports: every
PromQL expression in it is parsed, and each metric it queries, and each label it selects or
groups by, must be on the engine's real `/metrics` page (the HTTP route rendered over a real
supervisor), so renaming a metric or a label breaks this test, not a user's dashboard."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from engine.daemon.config import EngineConfig
from engine.daemon.supervisor import Supervisor
from engine.model.spec import PASS_THROUGH
from engine.model.stats import DirectionStats, EngineStats, LinkStats
from engine.protocol.messages import CaptureRequest, GetStats, Message, StatsReply
from engine.web.api import create_http_app
from engine.web.common import CaptureSource
from tests import ROOT
from tests.asgi_helpers import call

DASHBOARD = ROOT / "deploy" / "grafana" / "linkshaper.json"
#: Labels Prometheus adds when it scrapes (not on the page).
SCRAPE_LABELS = {"instance", "job"}
#: The PromQL functions and aggregations the dashboard may call, and its other words.
FUNCTIONS = {"rate", "irate", "increase", "delta", "deriv", "abs", "clamp_min", "clamp_max",
             "histogram_quantile", "avg_over_time", "max_over_time", "min_over_time",
             "label_replace", "vector", "scalar", "time"}  # fmt: skip
AGGREGATIONS = {"sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev"}
CLAUSES = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset"}
TOKEN = re.compile(r"""
    (?P<space>\s+) | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*') |
    (?P<duration>(?:\d+(?:ms|[smhdwy]))+) | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?) |
    (?P<variable>\$\{?\w+\}?) |
    (?P<name>[A-Za-z_:][A-Za-z0-9_:]*) | (?P<match>=~|!~|!=|==|>=|<=|=) |
    (?P<op>[-+*/%^<>,()\[\]{}])
""", re.VERBOSE)  # fmt: skip


@dataclass
class Query:
    """What one expression reads: metric names with the labels selected on each, and the
    labels it groups by."""

    metrics: dict[str, set[str]] = field(default_factory=dict)
    grouped: set[str] = field(default_factory=set)


def tokens(expr: str) -> list[tuple[str, str]]:
    """(kind, text) of every token; a character PromQL does not have fails the parse."""
    found, at = [], 0
    while at < len(expr):
        token = TOKEN.match(expr, at)
        assert token is not None and token.lastgroup, f"cannot parse {expr[at:]!r} in {expr!r}"
        if token.lastgroup != "space":
            found.append((token.lastgroup, token.group()))
        at = token.end()
    return found


def parse(expr: str) -> Query:
    """A PromQL expression's metrics and labels; unbalanced brackets, an unknown function
    (a name called that is not one) and a matcher without a string value fail."""
    found, query, depth, at = tokens(expr), Query(), 0, 0
    while at < len(found):
        kind, text = found[at]
        at += 1
        following = found[at][1] if at < len(found) else ""
        if kind == "name" and text in CLAUSES:
            at = _label_list(found, at, expr, query.grouped)
        elif kind == "name" and text in FUNCTIONS | AGGREGATIONS:
            assert following == "(" or following in CLAUSES, f"{text} not called in {expr!r}"
        elif kind == "name" and text not in KEYWORDS:
            assert following != "(", f"no function {text} in {expr!r}"
            labels = query.metrics.setdefault(text, set())
            if following == "{":
                at = _matchers(found, at + 1, expr, labels)
        elif text in ("(", "["):
            depth += 1
        elif text in (")", "]"):
            depth -= 1
            assert depth >= 0, f"unbalanced brackets in {expr!r}"
        else:
            assert text not in ("{", "}"), f"matchers without a metric in {expr!r}"
    assert depth == 0, f"unbalanced brackets in {expr!r}"
    assert query.metrics, f"no metric in {expr!r}"
    return query


def _label_list(found: list[tuple[str, str]], at: int, expr: str, into: set[str]) -> int:
    """`by (a, b)`: the names between the brackets, into `into`; where the list ends."""
    assert found[at : at + 1] == [("op", "(")], f"a clause without its label list in {expr!r}"
    for kind, text in found[at + 1 :]:
        at += 1
        if text == ")":
            return at + 1
        assert kind == "name" or text == ",", (text, expr)
        if kind == "name":
            into.add(text)
    raise AssertionError(f"unclosed label list in {expr!r}")


def _matchers(found: list[tuple[str, str]], at: int, expr: str, into: set[str]) -> int:
    """`{label=~"...", ...}` from just after the brace: the label names, into `into`; where
    the matchers end."""
    while at < len(found):
        text = found[at][1]
        if text == "}":
            return at + 1
        if text == ",":
            at += 1
            continue
        kinds = [k for k, _ in found[at : at + 3]]
        assert kinds == ["name", "match", "string"], f"a bad matcher at {text!r} in {expr!r}"
        into.add(text)
        at += 3
    raise AssertionError(f"unclosed matchers in {expr!r}")


class BothDirections:
    """A real supervisor (no workers: no packets here) whose stats carry both directions with
    the default link, so that every per-direction and per-link family has samples with its
    labels on the page; everything else is the supervisor's own answer."""

    def __init__(self) -> None:
        self.supervisor = Supervisor(EngineConfig("outer", "inner"), PASS_THROUGH)

    def handle(self, request: Message) -> Message:
        if isinstance(request, GetStats):
            sides = {d: DirectionStats(direction=d, at=1.0, flows={"default": LinkStats()})
                     for d in ("ingress", "egress")}  # fmt: skip
            return StatsReply(stats=EngineStats(**sides))
        return self.supervisor.handle(request)

    def listen(self, callback: Callable[[Message], None]) -> Callable[[], None]:
        return self.supervisor.listen(callback)

    def capture(self, request: CaptureRequest) -> CaptureSource:
        return self.supervisor.capture(request)


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Each sample name `/metrics` gives, with the labels its samples carry."""
    status, body, _ = call(create_http_app(BothDirections()), "GET", "/metrics", [b""])
    assert status == 200, body
    names: dict[str, set[str]] = {}
    for line in body.decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ")
            suffixes = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum",
                        "_count")}.get(kind, ("",))  # fmt: skip
            for suffix in suffixes:
                names.setdefault(family + suffix, set())
        elif line and not line.startswith("#"):
            name, _, labels = line.split(" ")[0].partition("{")
            names.setdefault(name, set()).update(re.findall(r'(\w+)="', labels))
    return names


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def expressions() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", ())]


def test_the_dashboard_has_grafanas_shape_and_a_prometheus_datasource_variable() -> None:
    data = dashboard()
    assert isinstance(data["schemaVersion"], int) and data["schemaVersion"] >= 36
    assert data["title"] and data["uid"]
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = data["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    graphs = [p for p in panels if p["type"] != "row"]
    assert len(graphs) >= 6
    for panel in graphs:
        assert panel["title"] and set(panel["gridPos"]) == {"x", "y", "w", "h"}, panel
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"] and target["refId"], panel["title"]
            assert target["datasource"] == panel["datasource"], panel["title"]


@pytest.mark.parametrize("expr", expressions())
def test_each_query_reads_only_what_the_engine_exports(
    expr: str, exported: dict[str, set[str]]
) -> None:
    query = parse(expr)
    carried = set(SCRAPE_LABELS)
    for metric, labels in query.metrics.items():
        assert metric in exported, f"{metric} is not on /metrics (has {sorted(exported)})"
        assert labels <= exported[metric] | SCRAPE_LABELS, (metric, labels, exported[metric])
        carried |= exported[metric]
    assert query.grouped <= carried, (query.grouped, carried)


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    """Throughput in and out, drops by cause, queue depth, delay percentiles, CPU, memory."""
    queried = {m for e in expressions() for m in parse(e).metrics}
    assert {"linkshaper_bytes_total", "linkshaper_drops_total", "linkshaper_queue_packets",
            "linkshaper_delay_seconds", "linkshaper_process_cpu_seconds_total",
            "linkshaper_process_resident_memory_bytes"} <= queried  # fmt: skip
    assert any("cause" in parse(e).grouped for e in expressions())


def test_the_parser_refuses_what_is_not_promql(exported: dict[str, set[str]]) -> None:
    """The checks above rely on the parser: a renamed metric, a label not there, a broken
    bracket and an unknown function are each caught."""
    assert parse('sum by (cause) (rate(linkshaper_drops_total{direction="in"}[5m]))').metrics == {
        "linkshaper_drops_total": {"direction"}
    }
    assert "linkshaper_bytes" not in exported and "linkshaper_bytes_total" in exported
    for broken in ("sum(rate(linkshaper_drops_total[5m])", "linkshaper_drops_total{cause}",
                   "rates(linkshaper_drops_total[5m])", "sum by cause (linkshaper_drops_total)",
                   "sum(linkshaper_drops_total)) (", '{cause="aqm"}'):  # fmt: skip
        with pytest.raises(AssertionError):
            parse(broken)
