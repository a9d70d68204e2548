"""`run --realtime` (issue 38, item 5), with the real engine in the lab: where the process may
(root here has CAP_SYS_NICE), its workers run at SCHED_FIFO with the documented priority and
the supervisor as before; where it may not (CAP_SYS_NICE taken away, RLIMIT_RTPRIO 0), the
engine says so in one line and forwards as without the option. Without it, nothing changes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.kernel.realtime import REALTIME_PRIORITY
from engine.lab.harness import EngineProcess
from engine.lab.lab import SERVER_IP, Lab

StartEngine = Callable[..., EngineProcess]
#: Runs the engine without CAP_SYS_NICE (nor any way to get it back) and with no real-time
#: priority allowed by rlimit either.
WITHOUT_SYS_NICE = ("prlimit", "--rtprio=0:0", "setpriv", "--bounding-set=-sys_nice",
                    "--inh-caps=-sys_nice")  # fmt: skip


def pids(engine: EngineProcess) -> dict[str, int]:
    with engine.client() as client:
        info = client.info()
    return {"supervisor": info.supervisor_pid, **info.worker_pids}


def policies(engine: EngineProcess) -> dict[str, tuple[int, int]]:
    """Each process's scheduling policy and real-time priority."""
    return {
        name: (os.sched_getscheduler(pid), os.sched_getparam(pid).sched_priority)
        for name, pid in pids(engine).items()
    }


@pytest.fixture
def bare_engine(lab: Lab, tmp_path: Path) -> Iterator[Callable[..., EngineProcess]]:
    """An engine started through a wrapper command (stopped after the test)."""
    engines: list[EngineProcess] = []

    def start(*extra: str, wrapper: tuple[str, ...] = ()) -> EngineProcess:
        engine = EngineProcess(lab, tmp_path, {}, extra=extra, wrapper=wrapper)
        engines.append(engine)
        engine.wait_ready()
        return engine

    try:
        yield start
    finally:
        for engine in engines:
            engine.close()


@pytest.mark.lab
def test_realtime_runs_the_workers_at_sched_fifo(bare_engine: Callable[..., EngineProcess]) -> None:
    engine = bare_engine("--realtime")
    found = policies(engine)
    assert found["ingress"] == (os.SCHED_FIFO, REALTIME_PRIORITY), found
    assert found["egress"] == (os.SCHED_FIFO, REALTIME_PRIORITY), found
    assert found["supervisor"] == (os.SCHED_OTHER, 0), found
    assert "not allowed here" not in engine.stderr()


@pytest.mark.lab
def test_without_realtime_nothing_changes(bare_engine: Callable[..., EngineProcess]) -> None:
    engine = bare_engine()
    assert set(policies(engine).values()) == {(os.SCHED_OTHER, 0)}


@pytest.mark.lab
def test_realtime_refused_is_said_once_and_the_engine_forwards(
    bare_engine: Callable[..., EngineProcess], lab: Lab
) -> None:
    engine = bare_engine("--realtime", wrapper=WITHOUT_SYS_NICE)
    assert set(policies(engine).values()) == {(os.SCHED_OTHER, 0)}
    said = [line for line in engine.stderr().splitlines() if "--realtime" in line]
    assert len(said) == 1, said
    assert "not allowed here (Operation not permitted)" in said[0]
    assert "--cap-add SYS_NICE" in said[0] and "--ulimit rtprio=10" in said[0]
    pinged = lab.run("client", "ping", "-c", "3", "-i", "0.2", "-W", "2", SERVER_IP)
    assert " 0% packet loss" in pinged.stdout, pinged.stdout
