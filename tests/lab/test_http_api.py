"""The HTTP API of `linkshaper run --http`, against a real engine in the lab's box: the seed's
calls, patches, errors that name the field, the token, stats, metrics, timelines, OpenAPI and
the browser page in headless Chromium."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from engine.lab.harness import EngineProcess, assert_delay, ping_rtts
from engine.lab.lab import SERVER_IP, Lab
from engine.model.spec import FRAMING_OVERHEAD, Spec
from engine.protocol.client import ControlClient
from tests.netns_thread import in_netns

pytestmark = [pytest.mark.lab, pytest.mark.shared_lab]

StartEngine = Callable[..., EngineProcess]
PORT = 8089
BASE = f"http://127.0.0.1:{PORT}"
TOKEN = "s3cret-token"


def http(
    lab: Lab, method: str, path: str, body: Any = None, token: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:  # fmt: skip
    """One request from inside the box (where the API listens on loopback)."""

    def call() -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(BASE + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            return status, text

    return in_netns(lab.ns("box"), call)


def engine_spec(engine: EngineProcess) -> Spec:
    with ControlClient(engine.control) as client:
        return client.get_spec()


@pytest.fixture
def api(start_engine: StartEngine) -> EngineProcess:
    return start_engine({"ingress": {}, "egress": {}}, extra=("--http", f"127.0.0.1:{PORT}"))


def test_the_seed_calls_work_unchanged(api: EngineProcess, lab: Lab) -> None:
    status, spec = http(lab, "GET", "/qos")
    assert status == 200 and spec["default_link"]["egress"]["rate"] == 10_000_000_000
    seed_spec = {"ingress": {"rate": 10_000_000, "loss": 0.0, "latency": 15, "jitter": 0,
                             "jitter_strength": 0.0, "reorder_packets": False},
                 "egress": {"rate": 1_000_000, "loss": 0.0, "latency": 15, "jitter": 0,
                            "jitter_strength": 0.0, "reorder_packets": False}}  # fmt: skip
    status, applied = http(lab, "POST", "/", seed_spec)
    assert status == 200 and applied["default_link"]["ingress"]["rate"] == 10_000_000
    assert engine_spec(api).default_link.egress.latency == 15
    # 15 ms each way, plus a 98-byte ping frame's time on the wire at 1 and at 10 Mbit/s.
    serialisation = (98 + FRAMING_OVERHEAD) * 8 * (1 / 1_000_000 + 1 / 10_000_000) * 1000
    assert_delay(ping_rtts(lab, count=12), 30.0 + serialisation)
    status, _ = http(lab, "POST", "/qos", {"egress": {"latency": "40ms"}, "ingress": {}})
    assert status == 200 and engine_spec(api).default_link.egress.latency == 40
    assert engine_spec(api).default_link.ingress.latency == 0


def test_patch_sets_single_fields_with_units(api: EngineProcess, lab: Lab) -> None:
    status, spec = http(lab, "PATCH", "/qos", {"egress.latency": "50ms", "ingress.rate": "2mbit"})
    assert status == 200
    assert spec["default_link"]["egress"]["latency"] == 50
    assert engine_spec(api).default_link.ingress.rate == 2_000_000


@pytest.mark.parametrize(
    ("method", "path", "payload", "words"),
    [
        (
            "POST",
            "/qos",
            {"egress": {"loss": 2}},
            "default_link.egress.loss: must be at most 100 % (got 200 %)",
        ),
        ("POST", "/", {"egress": {"lossy": 1}}, "default_link.egress.lossy: unknown field"),
        (
            "PATCH",
            "/qos",
            {"egress.latency": "soon"},
            "default_link.egress.latency: not a duration",
        ),
        ("PATCH", "/qos", {"flows.web.egress.rate": 1}, "no flow labelled 'web'"),
        ("POST", "/qos", b"{not json", "JSON"),
    ],
)
def test_bad_payloads_get_4xx_naming_the_field_and_change_nothing(
    api: EngineProcess, lab: Lab, method: str, path: str, payload: Any, words: str
) -> None:
    before = engine_spec(api)
    raw = payload if isinstance(payload, bytes) else None
    status, body = http(lab, method, path, None if raw else payload, raw=raw)
    assert 400 <= status < 500
    assert words in body["error"] and "\n" not in body["error"], body
    assert engine_spec(api) == before


def test_a_missing_or_wrong_token_changes_nothing(start_engine: StartEngine, lab: Lab) -> None:
    engine = start_engine(
        {"ingress": {}, "egress": {}},
        extra=("--http", f"127.0.0.1:{PORT}", "--http-token", TOKEN),
    )
    before = engine_spec(engine)
    for token in (None, "wrong"):
        for method, path, body in (("POST", "/qos", {"egress": {"rate": 1000}}),
                                   ("POST", "/", {"egress": {"rate": 1000}}),
                                   ("PATCH", "/qos", {"egress.rate": 1000}),
                                   ("POST", "/timeline/record", None)):  # fmt: skip
            status, answer = http(lab, method, path, body, token=token)
            assert status == 401 and "token" in answer["error"]
    assert engine_spec(engine) == before
    assert http(lab, "GET", "/qos")[0] == 401  # reads need it too (tests/unit/test_http_budget.py)
    assert http(lab, "GET", "/qos", token=TOKEN)[0] == 200
    status, _ = http(lab, "PATCH", "/qos", {"egress.rate": 1000}, token=TOKEN)
    assert status == 200 and engine_spec(engine).default_link.egress.rate == 1000


def test_stats_stream_metrics_and_openapi(api: EngineProcess, lab: Lab) -> None:
    ping_rtts(lab, count=5)
    status, stats = http(lab, "GET", "/stats")
    assert status == 200 and stats["egress"]["total"]["packets_out"] >= 5
    # With traffic, each direction reports ten times a second (an idle engine once a second).
    pinger = subprocess.Popen(
        lab.in_ns("client", "ping", "-q", "-i", "0.02", "-c", "150", SERVER_IP),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        status, text = http(lab, "GET", "/stats/stream?seconds=1")
    finally:
        pinger.kill()
        pinger.wait()
    events = [line for line in text.splitlines() if line.startswith("event: ")]
    assert status == 200 and events.count("event: stats") >= 15, events
    status, metrics = http(lab, "GET", "/metrics")
    assert status == 200
    assert "# TYPE linkshaper_packets_total counter" in metrics
    assert 'linkshaper_packets_total{direction="egress",link="default",stage="out"}' in metrics
    assert (
        'linkshaper_rate_bits_per_second{direction="egress",link="default"} 10000000000' in metrics
    )  # every digit, not :g
    assert 'linkshaper_delay_seconds{direction="egress",quantile="0.99"}' in metrics
    status, schema = http(lab, "GET", "/openapi.json")
    assert status == 200
    assert {"/qos", "/", "/stats", "/metrics", "/timeline/replay"} <= set(schema["paths"])
    assert {"get", "post", "patch"} <= set(schema["paths"]["/qos"])


def test_timelines_over_http(api: EngineProcess, lab: Lab) -> None:
    assert http(lab, "POST", "/timeline/record")[0] == 200
    http(lab, "PATCH", "/qos", {"egress.latency": "25ms"})
    status, recording = http(lab, "DELETE", "/timeline/record")
    assert status == 200
    lines = [json.loads(line) for line in recording.splitlines()]
    assert [line.get("source") for line in lines[1:]] == ["http-record", "http"]

    timeline = "\n".join(json.dumps(step) for step in (
        {"at": 0.1, "set": {"egress.latency": "7ms"}},
        {"at": 0.3, "set": {"egress.latency": "9ms"}},
    ))  # fmt: skip
    status, started = http(lab, "POST", "/timeline/replay", raw=timeline.encode())
    assert status == 200 and started["total"] == 2
    deadline = time.monotonic() + 5
    while not http(lab, "GET", "/timeline/replay")[1]["finished"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert engine_spec(api).default_link.egress.latency == 9
    bad = '{"at": 0, "set": {"egress.loss": 5}}'
    status, answer = http(lab, "POST", "/timeline/replay", raw=bad.encode())
    assert status == 422 and "line 1: set: default_link.egress.loss" in answer["error"]


@contextmanager
def browser_page() -> Iterator[Any]:
    """A page in headless Chromium (call inside the box's namespace)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (make install)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
        ])  # fmt: skip
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_browser_page_changes_the_link(api: EngineProcess, lab: Lab) -> None:
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (make install)")

    def drive() -> str:
        with browser_page() as page:
            page.goto(BASE + "/")
            page.wait_for_function("document.getElementById('egress-rate').value !== ''")
            page.fill("#egress-latency", "45")
            page.fill("#ingress-rate", "3")
            page.click("#apply")
            page.wait_for_function("document.getElementById('status').textContent !== ''")
            page.wait_for_function(
                "document.getElementById('egress-live').textContent.startsWith('out')"
            )
            return str(page.inner_text("#status"))

    assert in_netns(lab.ns("box"), drive) == "applied"
    spec = engine_spec(api)
    assert spec.default_link.egress.latency == 45
    assert spec.default_link.ingress.rate == 3_000_000


def test_browser_page_adds_edits_and_removes_a_flow(api: EngineProcess, lab: Lab) -> None:
    """Flows are on the page with their links, and its Pass-through button resets the default
    link only: nothing it does not show is dropped."""
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (make install)")
    seen: list[dict[str, Any]] = []

    def get_qos() -> dict[str, Any]:  # in the box, as the page's own calls are
        with urllib.request.urlopen(BASE + "/qos", timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def status_is(page: Any, text: str) -> None:
        page.wait_for_function(f"document.getElementById('status').textContent === {text!r}")

    def press(page: Any, button: str, status: str) -> None:
        """Click, wait for the page to say it is done, and keep what GET /qos says then."""
        page.click(button)
        status_is(page, status)
        seen.append(get_qos())

    def add_flow(page: Any, label: str, **fields: str) -> None:
        page.fill("#new-label", label)
        for name, value in fields.items():
            page.fill(f"#new-{name}", value)
        press(page, "#add", f"added {label}")

    def drive() -> None:
        with browser_page() as page:
            page.goto(BASE + "/control.html")
            page.wait_for_function("document.getElementById('egress-rate').value !== ''")
            add_flow(page, "server", ip="198.18.0.2")
            page.click("#remove-server")
            status_is(page, "removed server")
            add_flow(page, "web", protocol="tcp", ports="80")
            page.fill("#flow-web-egress-latency", "25")
            page.fill("#egress-latency", "7")
            press(page, "#apply", "applied")
            press(page, "#reset", "pass-through")
            press(page, "#remove-web", "removed web")

    in_netns(lab.ns("box"), drive)
    by_address, added, edited, reset, removed = seen
    # One address is written as the seed's integer (its bytes read little-endian), for its client.
    assert by_address["flows"][0]["flow"]["ip"] == int.from_bytes(bytes([198, 18, 0, 2]), "little")
    assert [f["label"] for f in added["flows"]] == ["web"]
    assert added["flows"][0]["flow"] == {"ip": 0, "protocol": 6, "port_min": 80, "port_max": 80}
    assert edited["flows"][0]["link"]["egress"]["latency"] == 25
    assert edited["default_link"]["egress"]["latency"] == 7
    assert Spec.model_validate(reset).default_link == Spec().default_link
    assert reset["flows"] == edited["flows"]  # Pass-through kept the flow and its link
    assert removed["flows"] == []


def test_a_posted_spec_survives_sighup_and_restart(start_engine: StartEngine, lab: Lab) -> None:
    """Every applied change is written to the spec file: a SIGHUP without an edit, and a
    restart, keep what was posted (the seed's frontend wrote the file; ours did not)."""
    extra = ("--http", f"127.0.0.1:{PORT}")
    engine = start_engine({"ingress": {}, "egress": {}}, extra=extra)
    posted = {"default_link": {"egress": {"latency": 33}, "ingress": {"rate": 4_000_000}}}
    assert http(lab, "POST", "/qos", posted)[0] == 200
    saved = json.loads(engine.spec_path.read_text())
    assert saved["default_link"]["egress"]["latency"] == 33
    assert set(saved["default_link"]["egress"]) == {  # the seed's shape: its engine reads it
        "rate", "loss", "latency", "jitter", "jitter_strength", "reorder_packets"}  # fmt: skip
    engine.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "from sighup" not in engine.stderr():
        assert time.monotonic() < deadline, engine.stderr()
        time.sleep(0.05)
    assert engine_spec(engine).default_link.egress.latency == 33
    engine.close()
    again = start_engine(None, extra=extra)  # the same spec file, read afresh
    spec = engine_spec(again)
    assert (spec.default_link.egress.latency, spec.default_link.ingress.rate) == (33, 4_000_000)


def test_no_persist_leaves_the_spec_file_alone(start_engine: StartEngine, lab: Lab) -> None:
    engine = start_engine({"ingress": {}, "egress": {}}, extra=("--no-persist",))
    before = engine.spec_path.read_text()
    with engine.client() as client:
        client.patch({"egress.latency": 12}, source="test")
    assert engine_spec(engine).default_link.egress.latency == 12
    assert engine.spec_path.read_text() == before
