"""The kernel fast path (issue 38, item 1), with the real engine in the lab: a transparent
direction nobody captures is forwarded by tc's redirect (its counters in the stats); an
impairment, a capture or a flush has the engine take over at once, and the kernel is handed
the direction back a second after it is transparent again; switching under a stream loses
nothing, and the set delay is in force within 100 ms of each change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.lab.harness import EngineProcess, probe
from engine.lab.lab import INNER, OUTER, SERVER_IP, Lab
from engine.model.stats import DirectionStats
from engine.protocol.messages import CaptureRequest
from tests.lab.test_saturation import StartEngine

NO_NETLINK = Path(__file__).parent / "no_netlink.py"
UDP_PORT = 9331
#: The stream's rate, and the delay each switch to the engine sets.
PPS = 10_000
DELAY_MS = 20.0
#: Switches in the stream test (the issue's figure); LINKSHAPER_FAST_PATH_SWITCHES makes it
#: fewer where CI cannot spend the 90 s that 100 take (each hand-back waits a second).
SWITCHES = int(os.environ.get("LINKSHAPER_FAST_PATH_SWITCHES", "100"))
#: How long each spell lasts: on the engine (delay set), and transparent (the kernel takes
#: over after HAND_BACK_AFTER, 1 s, of it; the test waits for that).
ENGINE_SPELL = 0.3
TRANSPARENT_SPELL = 2.0
#: The delay must be in force this long after a change's reply at the latest.
APPLIED_WITHIN = 0.100
#: Datagrams sent this close to the delay's removal are still in the link when it goes, and
#: may leave before their 20 ms are up (seen: 18.3 ms, the engine's change of links, with
#: or without the fast path): the check stops short of them.
IN_THE_LINK = DELAY_MS / 1000 + 0.005


def egress(engine: EngineProcess, direction: str = "egress") -> DirectionStats:
    with engine.client() as client:
        stats = getattr(client.stats(), direction)
    assert isinstance(stats, DirectionStats)
    return stats


def wait_for(
    engine: EngineProcess, kernel: bool, seconds: float = 10.0, direction: str = "egress"
) -> DirectionStats:
    """A direction's stats once its fast path is `kernel` (or fail after `seconds`)."""
    deadline = time.monotonic() + seconds
    while (stats := egress(engine, direction)).fast_path != kernel:
        assert time.monotonic() < deadline, (
            f"fast path not {kernel} within {seconds} s: {stats}; {engine.stderr()[-2000:]}"
        )
        time.sleep(0.1)
    return stats


def redirect_rules(lab: Lab, device: str) -> str:
    return lab.run("box", "tc", "-s", "filter", "show", "dev", device, "ingress").stdout


@pytest.mark.lab
@pytest.mark.shared_lab
def test_a_transparent_direction_is_forwarded_by_the_kernel_and_counted(
    start_engine: StartEngine, lab: Lab
) -> None:
    engine = start_engine({})
    before = wait_for(engine, kernel=True)
    wait_for(engine, kernel=True, direction="ingress")
    assert "mirred (Egress Redirect to device outer)" in redirect_rules(lab, INNER)
    assert "mirred (Egress Redirect to device inner)" in redirect_rules(lab, OUTER)
    lab.run("client", "ping", "-c", "20", "-i", "0.01", "-q", SERVER_IP)
    time.sleep(0.3)
    after = egress(engine)
    assert after.fast_path
    # tc's counters: the 20 requests, and whatever else the lab sent meanwhile (ARP, ND).
    assert 20 <= after.kernel_forwarded - before.kernel_forwarded <= 30, after
    assert after.kernel_forwarded_bytes - before.kernel_forwarded_bytes >= 20 * 98
    engine.close()
    assert "mirred" not in redirect_rules(lab, INNER), "a stopped engine's redirect stays"


@pytest.mark.lab
@pytest.mark.shared_lab
def test_an_impairment_a_capture_and_a_flush_have_the_engine_forward(
    start_engine: StartEngine, lab: Lab
) -> None:
    engine = start_engine({})
    wait_for(engine, kernel=True)
    with engine.client() as client:
        client.patch({"egress.latency": "5ms"}, source="test")
    assert not egress(engine).fast_path  # at once: the reply came after the switch
    assert "mirred" not in redirect_rules(lab, INNER)
    with engine.client() as client:
        client.patch({"egress.latency": "0ms"}, source="test")
    wait_for(engine, kernel=True)
    with engine.client() as client:
        client.flush("egress")
        time.sleep(0.3)
        assert not egress(engine).fast_path
    wait_for(engine, kernel=True)
    with engine.client() as capture:
        records = capture.capture(CaptureRequest(direction="egress"), until=time.monotonic() + 3)
        next(records, None)  # the subscription made (the first batch, or 3 s without any)
        wait_for(engine, kernel=False, seconds=5.0)
        time.sleep(1.5)  # a capture keeps it on the engine
        assert not egress(engine).fast_path
    wait_for(engine, kernel=True)  # the capture ended with its client


@pytest.mark.lab
@pytest.mark.shared_lab
def test_where_tc_is_refused_the_engine_says_so_once_and_forwards_itself(
    lab: Lab, tmp_path: Path
) -> None:
    """Netlink refused to the engine (a seccomp filter, as a sandbox may have)."""
    engine = EngineProcess(lab, tmp_path, {}, wrapper=(sys.executable, str(NO_NETLINK)))
    try:
        engine.wait_ready()
        time.sleep(2.5)  # past the second a transparent direction waits for the kernel
        assert not egress(engine).fast_path
        lab.run("client", "ping", "-c", "5", "-i", "0.05", "-q", SERVER_IP)
        time.sleep(1.5)
        refusals = [line for line in engine.stderr().splitlines() if "fast path is refused" in line]
        assert len(refusals) == 2, engine.stderr()  # one a direction, once
        assert "netlink: Operation not permitted" in refusals[0]
        assert egress(engine).total.packets_out >= 5
    finally:
        engine.close()


@pytest.mark.lab
@pytest.mark.shared_lab
def test_no_fast_path_leaves_every_frame_to_the_engine(start_engine: StartEngine, lab: Lab) -> None:
    engine = start_engine({}, extra=("--no-fast-path",))
    time.sleep(1.5)
    assert not egress(engine).fast_path
    assert "mirred" not in redirect_rules(lab, INNER)


@pytest.mark.lab
@pytest.mark.shared_lab
def test_switches_under_a_stream_lose_nothing_and_apply_the_delay_at_once(
    start_engine: StartEngine, lab: Lab
) -> None:
    engine = start_engine({})
    lab.run("client", "ping", "-c", "2", "-i", "0.2", "-q", SERVER_IP)  # neighbours known
    wait_for(engine, kernel=True)
    cycles = SWITCHES // 2
    seconds = cycles * (ENGINE_SPELL + TRANSPARENT_SPELL)
    count = int(PPS * seconds)
    receiver = subprocess.Popen(
        probe(lab, "server", "recv", str(UDP_PORT), "--idle", "3", "--each"),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.5)
    # Sent for longer than the switches take (asserted below: none is made without it).
    sender = subprocess.Popen(probe(lab, "client", "send", SERVER_IP, str(UDP_PORT), "--report",
                                    "--count", str(count), "--pps", str(PPS)),
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    spells: list[tuple[float, float]] = []  # (delay set, delay gone), wall clock
    try:
        started = egress(engine).total.packets_in
        deadline = time.monotonic() + 30.0
        while egress(engine).total.packets_in < started + 1000:  # the stream flows
            assert time.monotonic() < deadline, "the stream did not start in 30 s"
            time.sleep(0.05)
        with engine.client() as client:
            for _ in range(cycles):
                wait_for(engine, kernel=True)  # the kernel forwards: switch to the engine
                client.patch({"egress.latency": f"{DELAY_MS}ms"}, source="test")
                set_at = time.time()
                time.sleep(ENGINE_SPELL)
                gone_at = time.time()
                client.patch({"egress.latency": "0ms"}, source="test")  # and back, in 1 s
                spells.append((set_at, gone_at))
            last = wait_for(engine, kernel=True)
        went, _ = sender.communicate(timeout=seconds + 60)
        out, _ = receiver.communicate(timeout=120)
    finally:
        for process in (sender, receiver):
            if process.poll() is None:
                process.kill()
                process.wait()
    result = json.loads(out)
    stats = egress(engine)
    sent = {int(k): v for k, v in result["each_sent"].items()}
    delays = {int(k): v for k, v in result["each_ms"].items()}
    # (a sender that fell behind on a busy machine stops at udp_probe.MAX_SECONDS)
    count = json.loads(went)["sent"]
    missing = sorted(set(range(count)) - set(sent))
    first = min(sent.values())
    changes = [round(at - first, 3) for spell in spells for at in spell]
    assert not missing, (
        f"{len(missing)} of {count} lost: {missing[:20]}; changes {changes}; {stats}"
    )
    assert last.fast_path_switches >= SWITCHES, last
    assert max(sent.values()) > spells[-1][1], "the stream ended before the last switch"
    # Duplicates come only from a switch's overlap (a few ms of the stream at most), and the
    # engine counts them by tc's counters: handing over, every frame redirected before the
    # sampling filter was on (one netlink round trip), and the sample's share after; taking
    # back, what tc counted between its last look and the redirect's end. Each take-back
    # misses what came during a round trip or two around those looks (seen: 62 received,
    # 40 counted in 40 switches; 157 and 51 in 100 before the hand-over's were counted).
    seen, counted = result["duplicates"], stats.fast_path_duplicates
    assert seen <= 2 * counted + SWITCHES // 2, (result, stats)
    assert counted <= seen + SWITCHES // 2, (result, stats)
    assert result["duplicates"] <= 0.004 * PPS * SWITCHES, result
    late = [
        (seq, round(delays[seq], 2), [round(at - a, 4) for a, b in spells if a <= at < b])
        for seq, at in sent.items()
        if any(start + APPLIED_WITHIN <= at < end - IN_THE_LINK for start, end in spells)
        and delays[seq] < DELAY_MS - 0.5
    ]
    assert not late, f"{len(late)} datagrams without the delay: {late[:10]}"


@pytest.mark.lab
@pytest.mark.shared_lab
def test_the_shaped_direction_loses_nothing_while_the_other_goes_to_the_kernel(
    start_engine: StartEngine, lab: Lab
) -> None:
    """The first redirect on an interface made its clsact qdisc, and the kernel deactivates
    an interface while it grafts one: a frame the shaped direction's worker sent on it then
    went to the noop qdisc (the interface's tx_dropped) though its send said it went (the
    capture test lost one datagram in 1,500, 4 runs in 5). The qdiscs are made before the
    engine forwards a frame; here the other direction goes to the kernel mid-stream."""
    for device in (INNER, OUTER):  # as new interfaces are (an earlier test's qdisc stays)
        lab.run("box", "tc", "qdisc", "del", "dev", device, "clsact", check=False)
    engine = start_engine({"egress": {"latency": "5ms"}, "ingress": {"latency": "1ms"}})
    for device in (INNER, OUTER):
        assert "clsact" in lab.run("box", "tc", "qdisc", "show", "dev", device).stdout, device
    lab.run("client", "ping", "-c", "2", "-i", "0.2", "-q", SERVER_IP)  # neighbours known
    dropped_before = tx_dropped(lab, OUTER)
    receiver = subprocess.Popen(
        probe(lab, "server", "recv", str(UDP_PORT + 2), "--idle", "2"),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.5)
    sender = subprocess.Popen(probe(lab, "client", "send", SERVER_IP, str(UDP_PORT + 2),
                                    "--report", "--count", "80000", "--pps", str(PPS)),
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        started = egress(engine).total.packets_in
        deadline = time.monotonic() + 30.0
        while egress(engine).total.packets_in < started + 1000:  # the stream flows
            assert time.monotonic() < deadline, "the stream did not start in 30 s"
            time.sleep(0.05)
        with engine.client() as client:
            client.patch({"ingress.latency": "0ms"}, source="test")
        wait_for(engine, kernel=True, direction="ingress")
        assert sender.poll() is None, "the stream ended before the ingress went to the kernel"
        went, _ = sender.communicate(timeout=60)
        out, _ = receiver.communicate(timeout=60)
    finally:
        for process in (sender, receiver):
            if process.poll() is None:
                process.kill()
                process.wait()
    sent, received = json.loads(went)["sent"], json.loads(out)["received"]
    assert received == sent, f"{sent - received} of {sent} lost; {egress(engine)}"
    assert tx_dropped(lab, OUTER) == dropped_before


def tx_dropped(lab: Lab, device: str) -> int:
    """The box's interface's tx_dropped counter (a frame sent to a deactivated one's noop
    qdisc is counted there, and nowhere else)."""
    return int(lab.run("box", "cat", f"/sys/class/net/{device}/statistics/tx_dropped").stdout)


@pytest.mark.lab
@pytest.mark.shared_lab
def test_top_talkers_on_the_fast_path_are_the_sample_scaled_up(
    start_engine: StartEngine, lab: Lab
) -> None:
    """Issue 38, item 1: while the kernel forwards, the worker reads one frame in
    SAMPLE_EVERY; the far ends (top talkers, the seed's profiles) count each sampled frame
    for SAMPLE_EVERY, so a flow's count is the truth within 10 % (100,000 datagrams: ~1,560
    sampled, a standard deviation of 2.5 %), not 1/SAMPLE_EVERY of it."""
    engine = start_engine({})
    wait_for(engine, kernel=True)
    args = ("--report", "--count", "100000", "--pps", "20000", "--size", "200")
    command = probe(lab, "client", "send", SERVER_IP, str(UDP_PORT + 1), *args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)
    sent = json.loads(done.stdout)["sent"]
    time.sleep(1.0)  # the last report
    stats = egress(engine)
    assert stats.fast_path, "the engine took the stream over: nothing sampled"
    udp = [t for t in stats.top_talkers if t.protocol == 17]
    assert udp, stats.top_talkers
    counted = max(t.packets for t in udp)
    assert abs(counted - sent) <= 0.10 * sent, (counted, sent, udp[:3])


@pytest.mark.lab
@pytest.mark.shared_lab
def test_a_redirect_left_by_a_killed_engine_goes_when_any_engine_starts(
    start_engine: StartEngine, lab: Lab
) -> None:
    """Second attacker pass: SIGKILL of the supervisor and both workers at once (an OOM kill,
    `docker kill`) left the redirect forwarding with no engine; an engine started then with
    `--no-fast-path` never took it away, so its link went unshaped for good."""
    import psutil

    first = start_engine({})
    wait_for(first, kernel=True)
    wait_for(first, kernel=True, direction="ingress")
    group = [psutil.Process(first.process.pid)]
    group += group[0].children(recursive=True)
    for process in group:
        process.kill()
    psutil.wait_procs(group, timeout=10)
    assert "mirred" in redirect_rules(lab, INNER), "the kill left no redirect to clear"
    second = start_engine({"egress": {"latency": 30}}, extra=("--no-fast-path",))
    deadline = time.monotonic() + 10
    while "mirred" in redirect_rules(lab, INNER) + redirect_rules(lab, OUTER):
        assert time.monotonic() < deadline, "a killed engine's redirect stays"
        time.sleep(0.1)
    assert not egress(second).fast_path
