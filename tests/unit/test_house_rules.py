"""The house's size rules, checked on the tree so they cannot drift: no module over
MAX_MODULE_LINES and no function over MAX_FUNCTION_LINES in the product (engine, TUI, bench),
except the hot loops named in docs/architecture.md ("Hot loops kept whole"), whose split
would add a Python call per frame."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("engine", "shaper_tui", "bench")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: module path -> function name: each also named in docs/architecture.md with its measurement.
HOT_LOOPS = {("engine/daemon/worker/waits.py", "_stream_frames")}


def _modules() -> list[Path]:
    return sorted(p for folder in PRODUCT for p in (ROOT / folder).rglob("*.py"))


def test_no_module_is_over_the_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in _modules()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_over_the_limit_but_the_named_hot_loops() -> None:
    long: dict[tuple[str, str], int] = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[(str(path.relative_to(ROOT)), node.name)] = lines
    unnamed = {key: lines for key, lines in long.items() if key not in HOT_LOOPS}
    assert not unnamed, f"functions over {MAX_FUNCTION_LINES} lines: {unnamed}"


def test_every_hot_loop_kept_whole_is_named_in_the_architecture() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text[text.index("## Hot loops kept whole") :]
    for module, function in HOT_LOOPS:
        assert function in section and module in section, (module, function)


#: The standard library the pure core and the model may use: computation only. Anything else
#: (files, sockets, processes, threads, clocks, logging, compression, databases...) is I/O or
#: time, which belongs at an edge; import-linter's pure-core contract forbids the usual ones
#: by name, and this list closes the rest: a module must be added here, with a reason, to be
#: used there.
PURE_STDLIB = {
    "__future__", "typing", "dataclasses", "collections", "contextlib", "itertools",
    "functools", "enum", "abc", "math", "statistics", "random", "bisect", "heapq", "array",
    "struct", "base64", "json", "re", "ipaddress",
    "sys",  # sys.byteorder only
    "hashlib",  # keyed hashes of a packet's identity for a link's seed (core/seeded.py)
    "weakref",  # a dropped link's tables give their share of the worker's bound back
}  # fmt: skip


def test_the_pure_core_uses_only_computation_from_the_standard_library() -> None:
    used: dict[str, set[str]] = {}
    for folder in ("engine/core", "engine/model"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names and top not in PURE_STDLIB:
                        used.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    assert not used, f"the pure core imports I/O or time from the standard library: {used}"
