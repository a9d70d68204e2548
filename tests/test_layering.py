"""The two rules of the code's shape: the engine never imports the UI toolkit, and the UI
reaches the engine only through its documented message protocol."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_TOOLKITS = ("textual", "rich")
#: What shaper_tui may import from engine: the protocol, its models and the client that
#: carries them; pure helpers over those models (rates, presets, timelines, their replay and
#: recording, which reach the engine only through a callback); and what starts an engine
#: or a lab and hands back nothing but connections or a socket path (hosted, lab, lab_demo).
#: Never the supervisor, the workers or the pipeline.
PROTOCOL_MODULES = {
    "engine.errors",
    "engine.protocol",
    "engine.client",
    "engine.control",
    "engine.spec",
    "engine.stats",
    "engine.units",
    "engine.rates",
    "engine.presets",
    "engine.timeline",
    "engine.replay",
    "engine.recorder",
    "engine.hosted",
    "engine.lab",
    "engine.lab_demo",
    "engine.netns",
}


def imports(package: str) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.extend((path, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module))
    return found


def test_engine_source_never_imports_textual_or_rich() -> None:
    bad = [(p.name, m) for p, m in imports("engine") if m.split(".")[0] in UI_TOOLKITS]
    assert bad == []


def test_engine_runs_without_textual_or_rich_loaded() -> None:
    code = (
        "import sys, engine.cli, engine.supervisor, engine.worker, engine.lab_demo,"
        " engine.hosted, engine.presets, engine.rates\n"
        f"print([m for m in sys.modules if m.split('.')[0] in {UI_TOOLKITS!r}])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "[]"


def test_ui_uses_only_the_protocol() -> None:
    bad = [
        (p.name, m)
        for p, m in imports("shaper_tui")
        if m.startswith("engine") and m not in PROTOCOL_MODULES
    ]
    assert bad == []
