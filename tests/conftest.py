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

# Fixtures of the tests of files written as root (a shared directory, a root-only victim).
from tests.planted_links import shared_dir, victim  # noqa: F401


def lab_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "ethtool", "iperf3", "ping"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make install)"
    return None


@pytest.fixture
def lab() -> Iterator[Lab]:
    reason = lab_prerequisites()
    if reason:
        pytest.skip(reason)
    the_lab = Lab(f"lst{os.getpid() % 100000}")
    the_lab.up(offloads=True)
    try:
        yield the_lab
    finally:
        the_lab.down()


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
