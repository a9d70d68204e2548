from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.lab.harness import Background, EngineProcess
from engine.lab.lab import Lab
from engine.model.spec import Spec
from engine.namespaces.commands import kill_namespace_processes

# Fixtures of the tests of files written as root (a shared directory, a root-only victim).
from tests.planted_links import shared_dir, victim  # noqa: F401

#: What each folder of tests/ holds: the marker its tests carry (None: neither of them).
FOLDER_MARKERS: dict[str, str | None] = {"unit": None, "lab": "lab", "container": "container"}
#: Fixtures that build network namespaces (root): a test using one must be marked lab.
LAB_FIXTURES = frozenset({"lab", "module_lab"})
TESTS = Path(__file__).resolve().parent


def layout_problem(item: pytest.Item) -> str | None:
    """Why a test sits in the wrong folder for its markers, or None: the folder is what a test
    needs (`make test-fast` runs tests/unit without root), so it must agree with the marker."""
    if not item.path.resolve().is_relative_to(TESTS):
        return None  # not one of ours
    relative = item.path.resolve().relative_to(TESTS)
    folder = relative.parts[0] if len(relative.parts) > 1 else ""
    if folder not in FOLDER_MARKERS:
        return f"is not in one of tests/{{{','.join(FOLDER_MARKERS)}}}"
    wanted = FOLDER_MARKERS[folder]
    marked = {name for name in ("lab", "container") if item.get_closest_marker(name)}
    if wanted is None and marked:
        return f"is in tests/{folder} but marked {' and '.join(sorted(marked))}"
    if wanted is not None and marked != {wanted}:
        return f"is in tests/{folder} but not marked {wanted} alone ({sorted(marked)})"
    labs = LAB_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if labs and "lab" not in marked:
        return f"uses the {' and '.join(sorted(labs))} fixture (root) but is not marked lab"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keeps the layout from drifting: a test in the wrong folder is an error, not a skip."""
    problems = [f"{item.nodeid} {why}" for item in items if (why := layout_problem(item))]
    if problems:
        raise pytest.UsageError("tests in the wrong folder:\n" + "\n".join(problems))


def lab_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "ethtool", "iperf3", "ping"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make install)"
    return None


def built_lab(suffix: str = "") -> Iterator[Lab]:
    """A lab of this run's prefix (plus `suffix`), up for as long as the caller holds it, and
    removed after; the test is skipped where a lab cannot be built."""
    reason = lab_prerequisites()
    if reason:
        pytest.skip(reason)
    the_lab = Lab(f"lst{os.getpid() % 100000}{suffix}")
    the_lab.up(offloads=True)
    try:
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture(scope="module")
def module_lab() -> Iterator[Lab]:
    """One lab for the tests of a module marked `shared_lab` (its own prefix: a fresh lab built
    meanwhile for an unmarked test removes only its own namespaces)."""
    yield from built_lab("s")


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A lab of its own for each test, or the module's (marker `shared_lab`) for tests that only
    start engines and send traffic: building and removing one takes 0.7 to 1.7 s of `ip`
    commands here. A shared lab is left without the processes a test started in it."""
    if request.node.get_closest_marker("shared_lab"):
        shared: Lab = request.getfixturevalue("module_lab")
        try:
            yield shared
        finally:
            for name in shared.namespaces:
                kill_namespace_processes(name)
        return
    yield from built_lab()


@pytest.fixture
def start_engine(lab: Lab, tmp_path: Path) -> Iterator[Callable[..., EngineProcess]]:
    engines: list[EngineProcess] = []

    def start(
        spec: Spec | dict[str, Any] | None,
        spec_name: str = "spec.json",
        ready: bool = True,
        extra: tuple[str, ...] = (),
        profiles: tuple[str, str] | None = None,
    ) -> EngineProcess:
        engine = EngineProcess(lab, tmp_path, spec, spec_name, extra, profiles)
        engines.append(engine)
        if ready:
            engine.wait_ready()
        return engine

    try:
        yield start
    finally:
        for engine in engines:
            engine.close()


@pytest.fixture
def background() -> Iterator[Background]:
    procs = Background()
    try:
        yield procs
    finally:
        procs.close()
