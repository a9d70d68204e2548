"""The seed's JavaScript client against our HTTP API, request for request: the same method,
path, headers and body shape as `frontend/client/client.js` sends, and its rules for reading
the answer (a LINK with a field it does not know is an error; a flow's `ip` is the address's
bytes read as a little-endian number). The engine behind is a real supervisor (no workers)."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from engine.daemon.config import EngineConfig
from engine.daemon.supervisor import Supervisor
from engine.model.spec import PASS_THROUGH
from engine.web.api import create_http_app
from tests.asgi_helpers import call

#: The fields the seed client's QoS object has, with its defaults: `update` refuses others.
SEED_QOS = {"rate": 100e6, "loss": 0.0, "latency": 0, "jitter": 0, "jitter_strength": 0.0,
            "reorder_packets": False}  # fmt: skip


class UnknownField(Exception):
    pass


def qos_update(state: dict[str, Any], given: dict[str, Any]) -> None:
    for key, value in given.items():
        if key not in SEED_QOS:
            raise UnknownField(f"No such field: {key}")
        state[key] = value


def pton(address: str) -> int:
    return int(struct.unpack("<I", bytes(int(part) for part in address.split(".")))[0])


def ntop(number: int) -> str:
    return ".".join(str(b) for b in struct.pack("<I", number))


class SeedClient:
    """What `SyntheticNetwork` keeps and sends: a default link, flows in order."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.default = {"ingress": dict(SEED_QOS), "egress": dict(SEED_QOS)}
        self.flows: list[dict[str, Any]] = []

    def get(self) -> None:
        status, body, _ = call(self.app, "GET", "/qos", [b""])
        assert status == 200, body
        data = json.loads(body)
        for direction in ("ingress", "egress"):
            qos_update(self.default[direction], data["default_link"][direction])
        self.flows = []
        for flow in data["flows"]:
            link = {"ingress": dict(SEED_QOS), "egress": dict(SEED_QOS)}
            for direction in ("ingress", "egress"):
                qos_update(link[direction], flow["link"][direction])
            match = dict(flow["flow"], ip=pton(ntop(flow["flow"]["ip"])))
            self.flows.append({"label": flow["label"], "flow": match, "link": link})

    def config(self) -> dict[str, Any]:
        return {"default_link": self.default, "flows": self.flows}

    def commit(self) -> int:
        body = json.dumps(self.config()).encode()
        status, _, _ = call(self.app, "POST", "/qos", [body], declared=len(body))
        return status


@pytest.fixture
def client() -> SeedClient:
    return SeedClient(create_http_app(Supervisor(EngineConfig("outer", "inner"), PASS_THROUGH)))


def test_get_mutate_commit_get_round_trips_with_flows(client: SeedClient) -> None:
    client.get()  # the seed client's own defaults are not ours: what it reads replaces them
    assert client.default["egress"]["jitter_strength"] == 1.0
    client.default["egress"]["latency"] = 40
    client.default["ingress"]["rate"] = 2_000_000
    client.default["ingress"]["loss"] = 0.015
    client.flows.append({
        "label": "rtp",
        "flow": {"ip": pton("198.18.0.2"), "protocol": 17, "port_min": 5000, "port_max": 5999},
        "link": {"ingress": dict(SEED_QOS, rate=500_000), "egress": dict(SEED_QOS, jitter=8)},
    })  # fmt: skip
    posted = json.loads(json.dumps(client.config()))
    assert client.commit() == 200
    client.get()
    assert client.config() == posted


def test_extensions_appear_only_where_set(client: SeedClient) -> None:
    body = json.dumps({"egress.queue.packets": 50}).encode()
    status, answer, _ = call(client.app, "PATCH", "/qos", [body])
    assert status == 200 and json.loads(answer)["default_link"]["egress"]["queue"]["packets"] == 50
    with pytest.raises(UnknownField, match="queue"):  # the seed client cannot read it: said so
        client.get()
    body = json.dumps({"egress.queue.packets": 1000}).encode()  # back to the default
    assert call(client.app, "PATCH", "/qos", [body])[0] == 200
    client.get()


def test_a_json_body_is_json_whatever_its_content_type(client: SeedClient) -> None:
    body = b'{"default_link": {"egress": {"latency": 25}}}'
    for content_type in ("application/x-www-form-urlencoded", "text/plain", ""):
        status, answer, _ = call(client.app, "POST", "/qos", [body], content_type=content_type)
        assert status == 200, answer
    client.get()
    assert client.default["egress"]["latency"] == 25


def test_the_page_answers_at_the_seeds_address_too(client: SeedClient) -> None:
    status, page, _ = call(client.app, "GET", "/control.html", [b""])
    assert status == 200 and page == call(client.app, "GET", "/", [b""])[1]
    assert b"<html" in page.lower()


def test_a_flow_set_by_address_text_reads_as_the_seeds_integer(client: SeedClient) -> None:
    """A flow's `ip` given as text (our POST, PATCH, CLI or spec file) came back as text,
    which the seed's client reads as 0, any address, and commits back so: the flow silently
    widened to every address (the new-user pass). One address comes back as the seed's
    integer and a protocol name as its number; a prefix stays text (the seed has none)."""
    flows = [{"label": "rtp", "flow": {"ip": "198.18.0.2", "protocol": "udp"}},
             {"label": "lan", "flow": {"ip": "198.18.0.0/16"}}]  # fmt: skip
    body = json.dumps({"flows": flows}).encode()
    assert call(client.app, "POST", "/qos", [body], declared=len(body))[0] == 200
    _, answer, _ = call(client.app, "GET", "/qos", [b""])
    matches = [flow["flow"] for flow in json.loads(answer)["flows"]]
    assert matches[0]["ip"] == pton("198.18.0.2") and matches[0]["protocol"] == 17
    assert matches[1]["ip"] == "198.18.0.0/16"
    del flows[1]
    body = json.dumps({"flows": flows}).encode()
    assert call(client.app, "POST", "/qos", [body], declared=len(body))[0] == 200
    client.get()
    assert client.flows[0]["flow"]["ip"] == pton("198.18.0.2")
    assert client.commit() == 200
    _, answer, _ = call(client.app, "GET", "/qos", [b""])
    assert json.loads(answer)["flows"][0]["flow"]["ip"] == pton("198.18.0.2")
