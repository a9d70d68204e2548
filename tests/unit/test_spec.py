"""Spec loading: both seed formats, our additions, and a one-line error for every bad field."""

import json

import pytest

from engine.model.spec import EXAMPLE_SPEC, UNLIMITED_RATE, Spec, SpecError, loads_spec
from engine.model.spec_patch import patch_spec

SEED_LINK = {"rate": 10000000, "loss": 0.0, "latency": 0, "jitter": 0, "jitter_strength": 0.0}


def test_old_seed_format_loads() -> None:
    spec = loads_spec(json.dumps({"ingress": SEED_LINK, "egress": {**SEED_LINK, "rate": 1000000}}))
    assert spec.default_link.ingress.rate == 10_000_000
    assert spec.default_link.egress.rate == 1_000_000
    assert spec.flows == []


def test_new_seed_format_round_trips() -> None:
    text = EXAMPLE_SPEC.to_json()
    again = loads_spec(text)
    assert again == EXAMPLE_SPEC
    assert again.flows[0].label == "http"
    data = json.loads(text)
    assert data["default_link"]["ingress"]["latency"] == 0  # an integer, as the seed writes it
    assert isinstance(data["default_link"]["ingress"]["latency"], int)


def test_defaults_are_documented_values() -> None:
    link = Spec().default_link.ingress
    assert link.rate == UNLIMITED_RATE
    assert link.loss == 0 and link.latency == 0 and link.jitter == 0
    assert link.jitter_strength == 1.0
    assert link.reorder_packets is False
    assert link.jitter_distribution == "uniform"
    assert link.queue.packets == 1000 and link.queue.ms == 1000 and link.queue.bytes is None


def test_units_are_accepted_in_files() -> None:
    spec = loads_spec(json.dumps({"egress": {"rate": "10mbit", "latency": "1.5s", "loss": "2%"}}))
    assert spec.default_link.egress.rate == 10_000_000
    assert spec.default_link.egress.latency == 1500
    assert spec.default_link.egress.loss == pytest.approx(0.02)


def test_flow_ip_forms() -> None:
    seed_int = int.from_bytes(bytes([192, 168, 0, 1]), "little")
    spec = loads_spec(
        json.dumps(
            {
                "flows": [
                    {"label": "a", "flow": {"ip": seed_int}},
                    {"label": "b", "flow": {"ip": "198.18.0.0/24", "protocol": "udp"}},
                    {"label": "c", "flow": {"ip": "2001:2::2"}},
                ]
            }
        )
    )
    assert str(spec.flows[0].flow.network) == "192.168.0.1/32"
    assert str(spec.flows[1].flow.network) == "198.18.0.0/24"
    assert spec.flows[1].flow.protocol_number == 17
    assert spec.flows[2].flow.network is not None and spec.flows[2].flow.network.version == 6


BAD = [
    ({"egress": {"loss": 1.5}}, "default_link.egress.loss", "must be at most 100 % (got 150 %)"),
    (
        {"egress": {"rate": -1}},
        "default_link.egress.rate",
        "must be at least 0 bit/s (got -1 bit/s)",
    ),
    ({"egress": {"rate": "fast"}}, "default_link.egress.rate", "not a rate"),
    ({"egress": {"rate": "10 furlongs"}}, "default_link.egress.rate", "unknown rate unit"),
    (
        {"egress": {"latency": -5}},
        "default_link.egress.latency",
        "must be at least 0 ms (got -5 ms)",
    ),
    ({"egress": {"jitter": "soon"}}, "default_link.egress.jitter", "not a duration"),
    ({"egress": {"jitter_strength": 2}}, "default_link.egress.jitter_strength", "at most 100 %"),
    ({"egress": {"reorder_packets": "maybe"}}, "default_link.egress.reorder_packets", "boolean"),
    (
        {"egress": {"jitter_distribution": "cauchy"}},
        "default_link.egress.jitter_distribution",
        "'uniform', 'normal' or 'pareto'",
    ),
    (
        {"egress": {"queue": {"packets": 0}}},
        "default_link.egress.queue.packets",
        "at least 1 (got 0)",
    ),
    ({"egress": {"queue": {"sizes": 5}}}, "default_link.egress.queue.sizes", "unknown field"),
    (
        {"egress": {"burst_loss": {"p_enter": 0.1, "p_exit": 0}}},
        "default_link.egress.burst_loss.p_exit",
        "must be above 0 (got 0)",
    ),
    (
        {"egress": {"burst_loss": {"p_exit": 0.5}}},
        "default_link.egress.burst_loss.p_enter",
        "required (missing)",
    ),
    ({"egress": {"lossy": 0.1}}, "default_link.egress.lossy", "unknown field"),
    ({"egress": SEED_LINK, "sideways": {}}, "sideways", "unknown field"),
    ({"default_link": {"upward": SEED_LINK}}, "default_link.upward", "unknown field"),
    ({"flows": [{"label": "default"}]}, "flows[0].label", "reserved"),
    ({"flows": [{"label": "no spaces"}]}, "flows[0].label", "letters, digits and underscores"),
    ({"flows": [{"label": "a"}, {"label": "a"}]}, "spec", "duplicate flow label 'a'"),
    ({"flows": [{"label": "a", "flow": {"ip": 2**32}}]}, "flows[0].flow.ip", "32 bits"),
    (
        {"flows": [{"label": "a", "flow": {"ip": "300.1.1.1"}}]},
        "flows[0].flow.ip",
        "not an IP address",
    ),
    (
        {"flows": [{"label": "a", "flow": {"protocol": "gopher"}}]},
        "flows[0].flow.protocol",
        "unknown protocol",
    ),
    ({"flows": [{"label": "a", "flow": {"protocol": 300}}]}, "flows[0].flow.protocol", "8-bit"),
    (
        {"flows": [{"label": "a", "flow": {"port_max": 70000}}]},
        "flows[0].flow.port_max",
        "must be at most 65535 (got 70000)",
    ),
    (
        {"flows": [{"label": "a", "flow": {"port_min": 90, "port_max": 80}}]},
        "flows[0].flow",
        "port_min is above port_max",
    ),
    ({"flows": [{"label": "a", "flow": {"prot": 6}}]}, "flows[0].flow.prot", "unknown field"),
    ({"flows": "none"}, "flows", "valid list"),
]


@pytest.mark.parametrize(("data", "field", "reason"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_fields_are_named_on_one_line(data: object, field: str, reason: str) -> None:
    with pytest.raises(SpecError) as caught:
        loads_spec(json.dumps(data))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{field}: ") or f"; {field}: " in message, message
    assert reason in message, message


def test_broken_json_is_one_line_with_position() -> None:
    with pytest.raises(SpecError, match=r"not valid JSON: line 1 column \d+"):
        loads_spec('{"egress": {"rate": 10,}}')


def test_patch_by_path_with_units() -> None:
    spec = patch_spec(
        EXAMPLE_SPEC,
        {
            "egress.latency": "50ms",
            "ingress.rate": "10mbit",
            "flows.http.egress.loss": "1%",
            "default_link.ingress.reorder_packets": True,
        },
    )
    assert spec.default_link.egress.latency == 50
    assert spec.default_link.ingress.rate == 10_000_000
    assert spec.flows[0].link.egress.loss == pytest.approx(0.01)
    assert spec.default_link.ingress.reorder_packets is True
    assert EXAMPLE_SPEC.default_link.egress.latency == 0  # the original is untouched


def test_patch_errors_name_the_field() -> None:
    with pytest.raises(SpecError, match=r"^default_link\.egress\.latncy: unknown field$"):
        patch_spec(EXAMPLE_SPEC, {"egress.latncy": 5})
    with pytest.raises(SpecError, match="no flow labelled 'nope'"):
        patch_spec(EXAMPLE_SPEC, {"flows.nope.egress.rate": 5})
    with pytest.raises(
        SpecError, match=r"default_link\.egress\.loss: must be at most 100 % \(got 300 %\)"
    ):
        patch_spec(EXAMPLE_SPEC, {"egress.loss": 3})


@pytest.mark.parametrize(
    ("rate", "bound"),
    [(10 * UNLIMITED_RATE + 0.00002, "at most 100000000000 "), (-0.5, "at least 0 bit/s")],
)
def test_a_plain_rate_is_judged_as_given_not_as_cut_to_whole_bits(rate: float, bound: str) -> None:
    """The schema says a plain rate is a number from 0 to 1e11: one just past either end used to
    be cut to whole bit/s first and taken (the API's schema fuzz test found 1e11 + 0.00002)."""
    with pytest.raises(SpecError, match=f"default_link.ingress.rate: must be {bound}"):
        loads_spec(json.dumps({"default_link": {"ingress": {"rate": rate}}}))
    assert (
        loads_spec('{"default_link": {"ingress": {"rate": 1500.7}}}').default_link.ingress.rate
        == 1500
    )
