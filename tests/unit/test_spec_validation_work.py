"""How much Python a spec's validation runs per flow: a control client sends the whole spec,
every field written out, so a spec of 10,000 flows is some 280,000 numbers with a unit type
each (issue 38: in force in 0.5 s). A number already in its field's type and range must cost
one call (its check), not a parser, a range check and their helpers (some 150 calls a flow)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from types import FrameType
from typing import Any

from engine.lab.big_specs import many_flows
from engine.model.spec import SpecError, loads_spec
from engine.protocol.messages import SetSpec, decode_request, encode

DEFAULT: dict[str, Any] = {"ingress": {"latency": 2}, "egress": {"latency": 2}}
FLOWS = 200
#: Python calls per flow at most when every field is written out (one check per number
#: field, the flow's own validators, and some slack).
CALLS_PER_FLOW = 45


def python_calls(text: str, read: Callable[[str], object] = loads_spec) -> Counter[str]:
    """The Python functions `read(text)` calls, by name (C code is not counted)."""
    calls: Counter[str] = Counter()

    def seen(frame: FrameType, event: str, _arg: object) -> None:
        if event == "call":
            calls[frame.f_code.co_name] += 1

    sys.setprofile(seen)
    try:
        read(text)
    finally:
        sys.setprofile(None)
    return calls


def test_a_whole_spec_as_a_client_sends_it_costs_few_python_calls_per_flow() -> None:
    whole = loads_spec(json.dumps(many_flows(FLOWS, DEFAULT))).model_dump_json()
    calls = python_calls(whole)
    per_flow = sum(calls.values()) / FLOWS
    assert per_flow <= CALLS_PER_FLOW, calls.most_common(6)


def test_the_same_unit_text_is_parsed_once() -> None:
    flows = [
        {"label": f"f{i}", "flow": {"ip": f"198.19.0.{i + 1}"},
         "link": {"egress": {"rate": "12500kbps", "latency": "1.25s", "loss": "0.5%"}}}
        for i in range(50)
    ]  # fmt: skip
    calls = python_calls(json.dumps({"default_link": DEFAULT, "flows": flows}))
    assert calls["_split"] <= 3, calls["_split"]  # one of each unit text, not 50


def test_bad_numbers_are_still_refused_naming_the_field() -> None:
    cases = {
        '{"default_link": {"egress": {"loss": 1.5}}}': (
            "default_link.egress.loss",
            "at most 100 %",
        ),
        '{"default_link": {"egress": {"loss": "150%"}}}': (
            "default_link.egress.loss",
            "at most 100 %",
        ),
        '{"default_link": {"egress": {"latency": -1.0}}}': (
            "default_link.egress.latency",
            "at least",
        ),
        '{"default_link": {"egress": {"latency": "5000s"}}}': (
            "default_link.egress.latency",
            "at most 3600 s",
        ),
        '{"default_link": {"egress": {"rate": "2furlong"}}}': (
            "default_link.egress.rate",
            "unknown rate unit",
        ),
        '{"default_link": {"egress": {"loss": true}}}': ("default_link.egress.loss", "number"),
        '{"default_link": {"egress": {"jitter": 1%s}}}' % ("0" * 400): (
            "default_link.egress.jitter",
            "valid number",
        ),
    }
    for text, (field, reason) in cases.items():
        try:
            loads_spec(text)
        except SpecError as exc:
            message = str(exc)
            assert field in message and reason in message and "\n" not in message, message
        else:
            raise AssertionError(f"{text} was taken")


def test_a_whole_spec_sent_to_the_engine_carries_only_what_is_set() -> None:
    spec = loads_spec(json.dumps(many_flows(FLOWS, DEFAULT, 1)))
    data = encode(SetSpec(spec=spec, source="bench"))
    request = decode_request(data)
    assert isinstance(request, SetSpec) and request.spec == spec and request.source == "bench"
    calls = python_calls(data.decode(), lambda text: decode_request(text.encode()))
    whole = python_calls(spec.model_dump_json())  # (what each flow's numbers cost in full)
    assert sum(calls.values()) * 3 <= sum(whole.values()), (calls.total(), whole.total())
