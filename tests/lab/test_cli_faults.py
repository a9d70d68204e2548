"""`linkshaper set` sets a connection fault and the seed per direction and per flow in the
CLI's FIELD=VALUE syntax (read back with `get`), a bad one is refused in one line naming the
field, and `linkshaper stats` tells the fault's drops (`blackholed=`) and the connections the
link tracks (`conns`), with a real UDP stream through the lab."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from engine.lab.harness import Background, EngineProcess, probe
from engine.lab.lab import SERVER_IP, Lab
from engine.model.faults import Blackhole
from engine.model.spec import parse_spec
from engine.model.stats import EngineStats
from tests import ROOT

pytestmark = pytest.mark.lab

CLI = [sys.executable, "-m", "engine.cli.main"]
PORT = 6000
SPEC = {
    "flows": [{"label": "voice", "flow": {"protocol": "udp", "port_min": PORT, "port_max": PORT},
               "link": {"ingress": {}, "egress": {}}}],
}  # fmt: skip


def cli(engine: EngineProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "--control", engine.control], capture_output=True,
                          text=True, cwd=ROOT, timeout=30)  # fmt: skip


def test_set_a_blackhole_and_a_seed_per_flow_and_stats_tell_its_drops(
    lab: Lab, start_engine: Callable[..., EngineProcess], background: Background
) -> None:
    engine = start_engine(SPEC)
    done = cli(engine, "set", "flows.voice.egress.blackhole.after_s=1",
               "egress.blackhole.after_bytes=100000", "egress.blackhole.toxicity=50%",
               "ingress.seed=42", "flows.voice.egress.seed=7")  # fmt: skip
    assert done.returncode == 0, done.stderr
    spec = parse_spec(json.loads(cli(engine, "get").stdout))
    assert spec.default_link.egress.blackhole == Blackhole(after_bytes=100_000, toxicity=0.5)
    assert spec.default_link.ingress.seed == 42
    voice = spec.flows[0].link.egress
    assert voice.blackhole == Blackhole(after_s=1) and voice.seed == 7
    refused = cli(engine, "set", "ingress.blackhole.toxicity=0.5")  # no trigger
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
    assert "ingress.blackhole: give after_bytes or after_s" in refused.stderr, refused.stderr

    # A stream to the voice port: blackholed 1 s in. Streams go on (at most 8, 4 s each)
    # until `stats` says so: its `conns` is a gauge of the links that carried traffic in the
    # last report, so it is read while a stream runs, and a slow start cannot miss it.
    egress, deadline, streams = "", time.monotonic() + 60, 0
    sender: subprocess.Popen[str] | None = None
    while time.monotonic() < deadline:
        if (sender is None or sender.poll() is not None) and streams < 8:
            sender = background.start(probe(lab, "client", "send", SERVER_IP, str(PORT),
                                            "--count", "400", "--pps", "100"))  # fmt: skip
            streams += 1
        text = cli(engine, "stats", "--once", "--interval", "0.5").stdout
        egress = next((line for line in text.splitlines() if line.startswith("egress")), "")
        if re.search(r"blackholed=[1-9]", egress) and re.search(r"conns [1-9]", egress):
            break
    assert re.search(r"blackholed=[1-9]", egress) and re.search(r"conns [1-9]", egress), egress
    stats = EngineStats.model_validate_json(cli(engine, "stats", "--once", "--json").stdout)
    assert stats.egress is not None and stats.egress.flows["voice"].drops.blackholed > 0
    assert cli(engine, "set", "flows.voice.egress.blackhole=null").returncode == 0
    assert parse_spec(json.loads(cli(engine, "get").stdout)).flows[0].link.egress.blackhole is None
