"""A refusal quotes what it was given briefly and harmlessly: a 320,000-character address
once made an 8 MB reply and a 940 KB log line, and a field name's ESC and newline reached
HTTP clients and terminals (`replay --check`)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from engine.model.spec import SpecError, parse_spec
from engine.model.spec_patch import patch_spec
from engine.timelines.parsing import parse_timeline
from engine.timelines.timeline import TimelineError

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
HOSTILE = "[b]x[/b]\x1b]0;T\x07\x1b[31mRED\n" + "\x01" * 320_000


def _spec_with(flow: dict[str, Any]) -> dict[str, Any]:
    link: dict[str, Any] = {"ingress": {}, "egress": {}}
    return {"default_link": link, "flows": [{"label": "u", "flow": flow, "link": link}]}


@pytest.mark.parametrize("field", ["ip", "protocol"])
def test_model_checks_quote_a_short_neutralised_value(field: str) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec(_spec_with({field: HOSTILE}))
    text = str(refused.value)
    assert f"flows[0].flow.{field}" in text
    assert len(text) < 300, len(text)
    assert not _CONTROL.search(text), repr(text)
    assert "\\x" not in text  # not repr's escapes either: neutralised, then cut


def test_duplicate_label_is_quoted_short() -> None:
    data = _spec_with({"ip": "10.0.0.1"})
    data["flows"][0]["label"] = "a\x1bb"
    data["flows"].append(dict(data["flows"][0]))
    with pytest.raises(SpecError) as refused:
        parse_spec(data)
    assert not _CONTROL.search(str(refused.value)), repr(str(refused.value))


@pytest.mark.parametrize(
    "path", ["\x1b[31mRED\n[b]x", "egress.\x1b]0;T\x07x", "flows.\x1bno.egress.rate", "a..\x1b\n"]
)
def test_patch_refusal_neutralises_the_field_name(path: str) -> None:
    spec = parse_spec({"default_link": {"ingress": {}, "egress": {}}})
    with pytest.raises(SpecError) as refused:
        patch_spec(spec, {path + "\x01" * 10_000: "5ms"})
    text = str(refused.value)
    assert not _CONTROL.search(text), repr(text)
    assert len(text) < 300, len(text)


def test_timeline_check_neutralises_the_field_name() -> None:
    line = json.dumps({"at": 0, "set": {"eg\x1b]0;T\x07ress.latency": "5ms"}})
    with pytest.raises(TimelineError) as refused:
        parse_timeline([line], name="tl")
    text = str(refused.value)
    assert "unknown field" in text
    assert not _CONTROL.search(text), repr(text)
