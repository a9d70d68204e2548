"""End to end, in the lab with real traffic: queue disciplines under a bulk TCP stream, ECN
marks on the wire, duplication, corruption, netem reordering and outages, each measured at
the receiver and compared with what was configured and what the engine counted."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from engine.lab.harness import (
    Background,
    EngineProcess,
    iperf3,
    median,
    ping_rtts,
    probe,
    received_bits_per_second,
)
from engine.lab.lab import SERVER_IP, Lab
from engine.model.spec import FRAMING_OVERHEAD
from engine.model.stats import LinkStats
from tests import ROOT
from tests.impairment_helpers import unseeded_bounds
from tests.wait_helpers import wait_udp_bound

pytestmark = pytest.mark.lab

StartEngine = Callable[..., EngineProcess]
PORT = 6000
RATE = 20_000_000
#: One full-sized frame's time on the 20 Mbit/s link.
PACKET_TIME_MS = (1514 + FRAMING_OVERHEAD) * 8 / RATE * 1000


def probe_flow(egress: dict[str, Any]) -> dict[str, Any]:
    """A spec whose UDP probe port has its own link (so the engine's counts are the probe's
    alone: the hosts' own IPv6 chatter takes the default link)."""
    flow = {"protocol": "udp", "port_min": PORT, "port_max": PORT}
    return {"flows": [{"label": "probe", "flow": flow, "link": {"egress": egress}}]}


def udp_run(lab: Lab, background: Background, count: int, pps: float) -> dict[str, Any]:
    receiver = background.start(probe(lab, "server", "recv", str(PORT), "--idle", "2", "--each"))
    wait_udp_bound(lab, "server", PORT)
    sender = background.start(
        probe(lab, "client", "send", SERVER_IP, str(PORT), "--count", str(count), "--pps", str(pps))
    )
    sender.wait(timeout=count / pps + 30)
    out, _ = receiver.communicate(timeout=60)
    result: dict[str, Any] = json.loads(out)
    return result


def probe_stats(engine: EngineProcess) -> LinkStats:
    with engine.client() as client:
        egress = client.stats().egress
    assert egress is not None
    return egress.flows["probe"]


def pings_under_load(lab: Lab, seconds: int = 8) -> tuple[list[float], dict[str, Any]]:
    """Ping RTTs taken while one bulk TCP stream uploads through the link (after 2 s for the
    queue to fill), and iperf3's report. The stream is cubic (Linux's default), which fills
    a queue until it drops: BBR, this machine's own default, paces to keep it short."""
    report: dict[str, Any] = {}

    def bulk() -> None:
        report.update(iperf3(lab, seconds=seconds, omit=1, extra=("-C", "cubic")))

    thread = threading.Thread(target=bulk)
    thread.start()
    try:
        time.sleep(2.5)
        rtts = ping_rtts(lab, count=int((seconds - 3) / 0.1), interval=0.1)
    finally:
        thread.join(timeout=seconds + 30)
    return rtts, report


def test_fq_codel_keeps_a_ping_out_of_the_bulk_queue_that_tail_drop_fills(
    start_engine: StartEngine, lab: Lab
) -> None:
    queue_ms = 200
    tail = start_engine({"egress": {"rate": RATE, "queue": {"ms": queue_ms, "packets": None}}})
    idle = median(ping_rtts(lab, count=10, interval=0.05))
    bloated, _ = pings_under_load(lab)
    tail.close()
    fq = {"rate": RATE, "queue": {"ms": queue_ms, "packets": None, "discipline": "fq_codel"}}
    engine = start_engine({"egress": fq})
    rtts, report = pings_under_load(lab)
    # Tail drop: the ping waits behind the standing queue TCP keeps (cubic fills it up to the
    # 200 ms limit and backs off by 30 % on a loss): at least half of it, in the median.
    assert median(bloated) - idle >= queue_ms / 2, bloated
    # FQ-CoDel: a sparse flow waits at most for the bulk packet in service, plus the engine's
    # own crossing (1 ms each way, as everywhere in these tests), never the bulk's queue.
    assert median(rtts) - idle <= PACKET_TIME_MS + 2.0, rtts
    assert len(rtts) >= 0.95 * int(5 / 0.1)  # and is not dropped
    goodput = received_bits_per_second(report)
    assert goodput >= 0.85 * RATE * 1448 / (1514 + FRAMING_OVERHEAD), goodput
    with engine.client() as client:
        egress = client.stats().egress
    assert egress is not None and egress.total.drops.aqm > 0  # CoDel did its work on the bulk


def test_ecn_marks_reach_the_receiver_and_nothing_is_dropped_by_the_aqm(
    start_engine: StartEngine, lab: Lab, background: Background
) -> None:
    for role in ("client", "server"):
        lab.run(role, "sysctl", "-qw", "net.ipv4.tcp_ecn=1")
    engine = start_engine(
        {"egress": {"rate": RATE, "queue": {"discipline": "fq_codel", "ecn": True}}}
    )
    counter = background.start(
        lab.in_ns("server", sys.executable, "-m", "tests.ecn_counter", "eth0", "8")
    )
    time.sleep(1.0)
    iperf3(lab, seconds=5, omit=0, extra=("-C", "cubic"))
    out, _ = counter.communicate(timeout=30)
    counts = json.loads(out)
    with engine.client() as client:
        egress = client.stats().egress
    assert egress is not None
    total = egress.total
    assert total.ecn_marked > 0 and total.drops.aqm == 0, total
    # On the wire: CE-marked segments arrive (GRO may merge some of them, so at most as many
    # as the engine marked), and the connection did negotiate ECN (its data is ECT(0)).
    assert 0 < counts["ce"] <= total.ecn_marked, counts
    assert counts["ect0"] > counts["not_ect"], counts


def test_duplicates_arrive_at_their_rate(
    start_engine: StartEngine, lab: Lab, background: Background
) -> None:
    n, p = 20_000, 0.05
    engine = start_engine(probe_flow({"duplicate": p}))
    result = udp_run(lab, background, n, pps=5000)
    stats = probe_stats(engine)
    assert result["received"] == n + result["duplicates"]  # every datagram, and its copies
    assert result["duplicates"] == stats.duplicated  # what the engine counted, exactly
    low, high = unseeded_bounds(n, p)
    assert low <= result["duplicates"] <= high, result["duplicates"]


def checksum_errors(lab: Lab) -> int:
    """The server kernel's checksum failures: UDP's and IP headers' (InCsumErrors)."""
    snmp = lab.run("server", "cat", "/proc/net/snmp", "/proc/net/netstat").stdout.splitlines()
    total = 0
    for names, values in zip(snmp[::2], snmp[1::2], strict=False):
        fields = dict(zip(names.split()[1:], values.split()[1:], strict=False))
        if names.split()[0] in ("Udp:", "IpExt:"):
            total += int(fields.get("InCsumErrors", 0))
    return total


def test_corrupted_datagrams_fail_the_receivers_checksum(
    start_engine: StartEngine, lab: Lab, background: Background
) -> None:
    n, p = 20_000, 0.05
    engine = start_engine(probe_flow({"corrupt": p}))
    before = checksum_errors(lab)
    result = udp_run(lab, background, n, pps=5000)
    errors = checksum_errors(lab) - before
    stats = probe_stats(engine)
    lost = n - result["received"]
    low, high = unseeded_bounds(n, p)
    assert low <= stats.corrupted <= high, stats.corrupted
    assert lost == stats.corrupted  # every corrupted datagram was refused, no other
    # Nearly every flip is a checksum failure; the few that hit the IP header's version,
    # length fields are refused by other checks.
    assert 0.9 * stats.corrupted <= errors <= stats.corrupted, (errors, stats.corrupted)


def test_netem_reordering_sends_its_share_past_the_latency(
    start_engine: StartEngine, lab: Lab, background: Background
) -> None:
    n, p = 10_000, 0.2
    engine = start_engine(probe_flow({"latency": 10, "reorder": p}))
    result = udp_run(lab, background, n, pps=2000)
    stats = probe_stats(engine)
    early = [seq for seq, ms in result["each_ms"].items() if ms < 5.0]
    assert result["received"] == n
    # Those the engine sent ahead skipped the 10 ms; no other datagram can beat that floor (a
    # busy host may hold one of them back for 5 ms: a few in a hundred are allowed).
    assert 0.97 * stats.reordered <= len(early) <= stats.reordered, (len(early), stats)
    low, high = unseeded_bounds(n, p)
    assert low <= stats.reordered <= high, stats.reordered
    assert result["reordered"] > 0.9 * len(early)  # and did overtake


@pytest.mark.parametrize("mode", ["blocked", "hold"])
def test_an_outage_of_half_a_second_every_five(
    start_engine: StartEngine, lab: Lab, background: Background, mode: str
) -> None:
    pps, seconds = 200, 6.5
    n = int(pps * seconds)
    engine = start_engine(probe_flow({"outage": {"period": 5000, "down": 500, "mode": mode}}))
    result = udp_run(lab, background, n, pps=pps)
    stats = probe_stats(engine)
    arrived = {int(seq): ms for seq, ms in result["each_ms"].items()}
    missing = [seq for seq in range(n) if seq not in arrived]
    if mode == "blocked":
        # Gaps: runs of datagrams that met the link down, none longer than 500 ms of them
        # (and at least one whole outage fits in 6.5 s).
        assert len(missing) == stats.drops.outage
        runs = _runs(missing)
        assert runs and max(runs) <= 0.5 * pps + 1 and max(runs) >= 0.5 * pps - 2, runs
    else:
        # Held: nothing lost; those that came while it was down waited for it to come back.
        assert not missing and stats.drops.total == 0
        held = [ms for ms in arrived.values() if ms > 20]
        assert len(held) >= (0.5 - 0.02) * pps - 2, len(held)  # (the last 20 ms wait less)
        assert 450 <= max(held) <= 500 + 50, max(held)


def _runs(values: list[int]) -> list[int]:
    runs: list[int] = []
    for index, value in enumerate(values):
        if index and value == values[index - 1] + 1:
            runs[-1] += 1
        else:
            runs.append(1)
    return runs


def test_every_new_field_over_the_cli_http_and_metrics(start_engine: StartEngine, lab: Lab) -> None:
    """`linkshaper set` and HTTP PATCH take the new fields by dotted path with units; a bad
    value is one line naming the field and changes nothing; /metrics and OpenAPI show them."""
    from tests.lab.test_http_api import PORT as HTTP_PORT
    from tests.lab.test_http_api import http

    engine = start_engine({"ingress": {}, "egress": {}}, extra=("--http", f"127.0.0.1:{HTTP_PORT}"))
    cli = [sys.executable, "-m", "engine.cli.main", "set", "--control", engine.control]
    ok = subprocess.run(
        [*cli, "egress.queue.discipline=fq_codel", "egress.queue.ecn=true",
         "egress.queue.target=3ms", "egress.duplicate=1%", "egress.corrupt=0.1%",
         "egress.reorder=2%", "egress.gap=3", "egress.loss_correlation=25%",
         "ingress.outage.period=5s", "ingress.outage.down=500ms", "ingress.outage.mode=hold",
         "ingress.slot.min_delay=1ms", "ingress.slot.max_delay=5ms", "ingress.overhead=-14",
         "ingress.cell_size=48", "ingress.cell_overhead=5"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    with engine.client() as client:
        spec = client.get_spec()
    egress, ingress = spec.default_link.egress, spec.default_link.ingress
    assert (egress.queue.discipline, egress.queue.ecn, egress.queue.target) == ("fq_codel", True, 3)
    assert (egress.duplicate, egress.reorder, egress.gap) == (0.01, 0.02, 3)
    assert ingress.outage is not None and ingress.outage.mode == "hold"
    assert ingress.slot is not None and ingress.slot.max_delay == 5
    assert (ingress.overhead, ingress.cell_size) == (-14, 48)
    bad = subprocess.run([*cli, "egress.queue.tupdate=5ms"], capture_output=True, text=True,
                         cwd=ROOT)  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "tupdate is a setting of pie, not of fq_codel" in bad.stderr
    status, body = http(lab, "PATCH", "/qos", {"egress.queue.discipline": "pie",
                                               "egress.queue.target": None,
                                               "egress.queue.tupdate": "30ms"})  # fmt: skip
    assert status == 200, body
    assert body["default_link"]["egress"]["queue"]["tupdate"] == 30
    status, body = http(lab, "PATCH", "/qos", {"ingress.outage.down": "6s"})
    assert status == 422 and "down must be above 0 and below period" in body["error"], body
    with engine.client() as client:
        assert client.get_spec().default_link.ingress.outage == ingress.outage  # unchanged
    status, metrics = http(lab, "GET", "/metrics")
    assert 'linkshaper_drops_total{direction="egress",link="default",cause="aqm"}' in metrics
    assert 'event="ecn_marked"' in metrics and "linkshaper_duplicate_ratio" in metrics
    status, schema = http(lab, "GET", "/openapi.json")
    schemas = schema["components"]["schemas"]
    link_schemas = [body for name, body in schemas.items() if name.startswith("LinkSpec")]
    assert link_schemas, list(schemas)
    for link_schema in link_schemas:
        fields = set(link_schema["properties"])
        assert {"duplicate", "corrupt", "reorder", "gap", "slot", "outage", "overhead"} <= fields
