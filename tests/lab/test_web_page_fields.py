"""The browser page edits every field of a LINK, for the default link and for a flow: headless
Chromium sets each field the model has (the list is read from the model, so a field added later
is covered without an edit here), presses Apply, and `GET /qos` of the real engine says the
value arrived."""

from __future__ import annotations

import json
import typing
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from engine.lab.harness import EngineProcess
from engine.lab.lab import Lab
from engine.model.impairments import DISCIPLINE_DEFAULTS
from engine.model.spec import DIRECTIONS, LinkSpec
from tests.lab.test_http_api import browser_page
from tests.netns_thread import in_netns

pytestmark = [pytest.mark.lab, pytest.mark.shared_lab]

StartEngine = Callable[..., EngineProcess]
PORT = 18640
BASE = f"http://127.0.0.1:{PORT}"
TRACE = "web.trace"
#: The fields the page edits in its own units (Mbit/s, %) in the panels and a flow's row, and
#: what one of those units is in the spec's.
QUICK_UNITS = {"rate": 1e6, "latency": 1.0, "jitter": 1.0, "loss": 0.01}
QUICK = {"default": ("rate", "latency", "jitter", "loss"), "flow": ("rate", "latency", "loss")}
#: Two rounds, each valid as a whole: the queue under each AQM with its own settings, and an
#: outage periodic, then random.
ROUNDS = ("pie", "fq_codel")
#: Values the schema alone cannot choose: a trace file there is, a rate in whole Mbit/s.
FIXED: dict[str, Any] = {"trace": TRACE, "rate": 3_000_000}


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a field that is a nested object (optional or not), else None."""
    for kind in (annotation, *typing.get_args(annotation)):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind
    return None


def leaves() -> list[str]:
    """Every field of a LINK, a nested object's as `section.field`."""
    found = []
    for name, field in LinkSpec.model_fields.items():
        sub = nested_model(field.annotation)
        found += [f"{name}.{key}" for key in sub.model_fields] if sub else [name]
    return found


def schema_of(leaf: str) -> dict[str, Any]:
    """The leaf's JSON schema with `null` taken out (what the page builds its editor from)."""
    schema = LinkSpec.model_json_schema(mode="validation")
    section, _, name = leaf.rpartition(".")
    props = schema["properties"]
    if section:
        ref = next(o["$ref"] for o in props[section].get("anyOf", [props[section]]) if "$ref" in o)
        props = schema["$defs"][ref.split("/")[-1]]["properties"]
    options = [o for o in props[name].get("anyOf", [props[name]]) if o.get("type") != "null"]
    flat = [inner for o in options for inner in o.get("anyOf", [o])]
    return {
        "types": {o.get("type") for o in flat},
        "options": flat,
        "default": props[name].get("default"),
    }


def generic_value(leaf: str) -> Any:
    """A valid value that is not the default, from the field's schema alone."""
    schema = schema_of(leaf)
    default, kinds = schema["default"], schema["types"]
    if "boolean" in kinds:
        return not default
    choices = next((o["enum"] for o in schema["options"] if "enum" in o), None)
    if choices:
        return next(c for c in reversed(choices) if c != default)
    number = next((o for o in schema["options"] if o.get("type") in ("number", "integer")), None)
    if number is None:
        raise AssertionError(f"{leaf}: no value known for this kind of field; add one")
    low, high = number.get("minimum", 0), number.get("maximum", 1 << 31)
    if number["type"] == "integer":
        if high > 1 << 53:  # past a double's integers: the page must keep it whole
            return (1 << 63) + 5
        return 7 if low <= 7 <= high and default != 7 else low + 1
    return 0.25 if high <= 1 else 12.5


def round_values(round_: str) -> dict[str, Any]:
    """Each leaf's value in one round: generic, but for what depends on other fields."""
    values = {leaf: FIXED[leaf] if leaf in FIXED else generic_value(leaf) for leaf in leaves()}
    for setting in ("target", "interval", "flows", "quantum", "tupdate", "max_burst"):
        mine = setting in DISCIPLINE_DEFAULTS[round_]
        values[f"queue.{setting}"] = values[f"queue.{setting}"] if mine else None
    values["queue.discipline"] = round_
    periodic = round_ == ROUNDS[0]
    values.update({"outage.period": 100.0 if periodic else None,
                   "outage.down": 12.5 if periodic else None,
                   "outage.mean_up": None if periodic else 100.0,
                   "outage.mean_down": None if periodic else 12.5})  # fmt: skip
    return values


def links(round_: str) -> Iterator[tuple[str, str, str]]:
    """(kind, the page's path prefix, the /qos path) of the default link and the flow, each
    in one direction a round, the other the next."""
    first = ROUNDS.index(round_) % 2
    yield "default", DIRECTIONS[first], f"default_link.{DIRECTIONS[first]}"
    other = DIRECTIONS[1 - first]
    yield "flow", f"flows.web.{other}", f"flows.0.link.{other}"


def shown(value: Any) -> str:
    return "" if value is None else str(value)


def set_field(page: Any, kind: str, prefix: str, leaf: str, value: Any) -> None:
    """Type `value` into the page's editor of `leaf`: the panels' in their units, else the
    editor built from the schema (found by its path, as a PATCH names it)."""
    if leaf in QUICK[kind]:
        label, direction = ("web", prefix.split(".")[-1]) if kind == "flow" else ("", prefix)
        selector = f"#flow-{label}-{direction}-{leaf}" if label else f"#{direction}-{leaf}"
        page.fill(selector, shown(value / QUICK_UNITS[leaf]))
        return
    section = leaf.rpartition(".")[0]
    toggle = page.query_selector(f'[data-toggle="{prefix}.{section}"]') if section else None
    if toggle is not None:
        toggle.set_checked(True)
    editor = page.query_selector(f'[data-path="{prefix}.{leaf}"]')
    assert editor is not None, f"the page has no editor for {prefix}.{leaf}"
    tag, kind_of = editor.evaluate("e => e.tagName"), editor.get_attribute("type")
    if kind_of == "checkbox":
        editor.set_checked(bool(value))
    elif tag == "SELECT":
        editor.select_option(shown(value))
    else:
        editor.fill(shown(value))


def at(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def check_arrived(qos: dict[str, Any], where: str, values: dict[str, Any]) -> list[str]:
    """What did not arrive: each leaf's value as GET /qos has it (a default left out)."""
    link = {**LinkSpec().model_dump(mode="json"), **at(qos, where)}
    wrong = []
    for leaf, wanted in values.items():
        section, _, name = leaf.rpartition(".")
        got = (link[section] or {}).get(name) if section else link[name]
        if leaf == "trace":
            ok = isinstance(got, str) and got.endswith("/" + TRACE)
        elif isinstance(wanted, float) and isinstance(got, int | float):
            ok = abs(got - wanted) <= 1e-9 * max(1.0, abs(wanted))
        else:
            ok = got == wanted
        if not ok:
            wrong.append(f"{where}.{leaf}: set {wanted!r}, /qos has {got!r}")
    return wrong


@pytest.fixture
def api(start_engine: StartEngine, tmp_path: Path) -> EngineProcess:
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / TRACE).write_text("5\n10\n")
    spec = {"default_link": {}, "flows": [{"label": "web", "flow": {"protocol": 6}}]}
    return start_engine(spec, extra=("--http", f"127.0.0.1:{PORT}", "--trace-dir", str(traces)))


def test_the_page_sets_every_field_of_a_link_and_a_flow(api: EngineProcess, lab: Lab) -> None:
    def get_qos() -> dict[str, Any]:
        with urllib.request.urlopen(BASE + "/qos", timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def drive() -> list[str]:
        wrong: list[str] = []
        with browser_page() as page:
            page.goto(BASE + "/")
            page.wait_for_function("document.getElementById('flow-web-egress-rate') !== null")
            for details in ("#default-more", "#flow-web-more"):
                if page.query_selector(details) is not None:
                    page.click(f"{details} summary")
            for round_ in ROUNDS:
                values = round_values(round_)
                for kind, prefix, _ in links(round_):
                    for leaf, value in values.items():
                        set_field(page, kind, prefix, leaf, value)
                page.evaluate("document.getElementById('status').textContent = ''")
                page.click("#apply")
                page.wait_for_function("document.getElementById('status').textContent !== ''")
                status = page.inner_text("#status")
                assert status == "applied", f"round {round_}: {status}"
                qos = get_qos()
                for _, _, where in links(round_):
                    wrong += check_arrived(qos, where, values)
            refused(page)
        return wrong

    def refused(page: Any) -> None:
        """A refusal is the engine's one line, and nothing of it was applied."""
        before = get_qos()
        page.fill('[data-path="flows.web.ingress.gap"]', "0")  # at least 1
        page.click("#apply")
        page.wait_for_function("document.getElementById('status').className === 'error'")
        body = json.dumps({"flows.web.ingress.gap": 0}).encode()
        request = urllib.request.Request(BASE + "/qos", body, method="PATCH")
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
        assert page.inner_text("#status") == json.loads(answer.value.read())["error"]
        assert get_qos() == before

    wrong = in_netns(lab.ns("box"), drive)
    assert not wrong, "\n".join(wrong)
