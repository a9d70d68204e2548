"""`make test-container`: the image built and used as in the seed's walkthrough, for real.

A synthetic network and two containers from the image; ping and iperf3 between them show that
latency and rate POSTed to each container's HTTP port (3000 and up on the host, as the known
downstream project does) take effect; `docker exec -it CTR tui` in tmux changes the link with
keys. Everything made here is removed at the end, also when a test fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.lab.harness import lower_quartile, ping_times

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
RUN = f"lsct{os.getpid() % 100000}"
IMAGE = f"linkshaper-test:{RUN}"
BASE_IMAGE = os.environ.get("LINKSHAPER_BASE_IMAGE", "linkshaper-base:bookworm")
NETWORK = f"{RUN}-synthetic"
SUBNET = "198.18.100.0/24"
SUBNET6 = "2001:2:0:100::/64"  # RFC 5180 benchmarking range
#: A network the boxes are not attached to: its gateway (the host's address on it) is reached
#: only through the box's default route, as the internet would be.
FAR_NETWORK = f"{RUN}-far"
FAR_SUBNET = "198.18.110.0/24"
FAR_HOST = "198.18.110.1"
PORTS = (3000, 3001)


def docker(*args: str, check: bool = True, timeout: float = 600) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Box:
    name: str
    port: int

    def exec(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        return docker("exec", self.name, *args, check=check, timeout=timeout)

    def synthetic_ip(self, version: int = 4) -> str:
        out = self.exec("ip", f"-{version}", "-o", "addr", "show", "veth0s", "scope", "global")
        match = re.search(r"inet6? (\S+)/", out)
        assert match, out
        return match.group(1)

    def http(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def ping(self, target: str, count: int = 10) -> list[float]:
        out = self.exec("ping", "-n", "-c", str(count), "-i", "0.05", "-W", "2", target,
                        check=False)  # fmt: skip
        return ping_times(out)

    def wait_served(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if self.http("GET", "/qos")[0] == 200:
                    return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                logs = docker("logs", self.name, check=False)
                raise AssertionError(f"{self.name} never served /qos:\n{logs}")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def boxes() -> Iterator[list[Box]]:
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0
    ):
        pytest.skip("no Docker engine (make test-container starts one)")
    made: list[Box] = []
    try:
        docker("build", "-q", "-t", IMAGE, "--build-arg", f"BASE={BASE_IMAGE}", str(ROOT),
               timeout=900)  # fmt: skip
        docker("network", "create", NETWORK, "--subnet", SUBNET)
        docker("network", "create", FAR_NETWORK, "--subnet", FAR_SUBNET)
        for index, port in enumerate(PORTS):
            box = Box(f"{RUN}-{'ab'[index]}", port)
            docker("create", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
                   "--env", f"SYNTHETIC_NETWORK={SUBNET}", "--publish", f"127.0.0.1:{port}:80",
                   "--name", box.name, IMAGE)  # fmt: skip
            made.append(box)
            docker("network", "connect", NETWORK, box.name)
            docker("start", box.name)
        for box in made:
            box.wait_served()
        yield made
    finally:
        for box in made:
            docker("rm", "-f", box.name, check=False)
        docker("network", "rm", NETWORK, check=False)
        docker("network", "rm", FAR_NETWORK, check=False)
        docker("image", "rm", "-f", IMAGE, check=False)


def pass_through(box: Box) -> None:
    assert box.http("POST", "/qos", {"ingress": {}, "egress": {}})[0] == 200


def test_posted_latency_shows_in_ping(boxes: list[Box]) -> None:
    a, b = boxes
    for box in boxes:
        pass_through(box)
    target = b.synthetic_ip()
    assert target.startswith("198.18.100.")
    before = a.ping(target)
    status, _ = a.http("POST", "/qos", {"ingress": {}, "egress": {"latency": 60}})
    assert status == 200
    after = a.ping(target)
    # 60 ms on A's way out: no ping sooner, and the typical one within 2 ms of 60 ms more than
    # before (lower quartiles: noise on a shared machine only adds).
    assert min(after) >= 60, (before, after)
    assert lower_quartile(after) <= lower_quartile(before) + 62, (before, after)


def test_posted_rate_shows_in_iperf3(boxes: list[Box]) -> None:
    a, b = boxes
    for box in boxes:
        pass_through(box)
    status, _ = a.http("PATCH", "/qos", {"egress.rate": "5mbit"})
    assert status == 200
    b.exec("iperf3", "-s", "-1", "-D", "-p", "5201")
    time.sleep(0.5)
    report = json.loads(a.exec("iperf3", "-c", b.synthetic_ip(), "-t", "4", "-O", "1", "-J",
                               timeout=60))  # fmt: skip
    goodput = report["end"]["sum_received"]["bits_per_second"]
    expected = 5e6 * 1448 / 1538  # TCP payload of a full frame on the wire
    assert goodput == pytest.approx(expected, rel=0.05), goodput


def test_control_traffic_is_not_shaped(boxes: list[Box]) -> None:
    a, _ = boxes
    status, _ = a.http("POST", "/qos", {"ingress": {"rate": 0}, "egress": {"rate": 0}})
    assert status == 200  # the link is blocked, yet the API (on eth0) still answers
    assert a.http("GET", "/qos")[1]["default_link"]["egress"]["rate"] == 0
    pass_through(a)


def test_tui_under_docker_exec_changes_the_link(boxes: list[Box]) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    a, b = boxes
    for box in boxes:
        pass_through(box)
    target = b.synthetic_ip()
    socket = f"{RUN}-tmux"
    tmux = ["tmux", "-L", socket]
    try:
        subprocess.run([*tmux, "new-session", "-d", "-s", "tui", "-x", "100", "-y", "32",
                        f"docker exec -it {a.name} tui"], check=True)  # fmt: skip
        screen = ""
        deadline = time.monotonic() + 20
        while "attached" not in screen:
            assert time.monotonic() < deadline, screen
            time.sleep(0.2)
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "tui"],
                                    capture_output=True, text=True).stdout  # fmt: skip
        # Tab to the upload panel's latency: 8 controls per panel, latency is the 4th.
        subprocess.run([*tmux, "send-keys", "-t", "tui", *["Tab"] * 11, "Enter"], check=True)
        time.sleep(0.5)
        subprocess.run([*tmux, "send-keys", "-t", "tui", "-l", "80ms"], check=True)
        subprocess.run([*tmux, "send-keys", "-t", "tui", "Enter"], check=True)
        deadline = time.monotonic() + 5
        while a.http("GET", "/qos")[1]["default_link"]["egress"]["latency"] != 80:
            assert time.monotonic() < deadline, "the TUI's change never reached the engine"
            time.sleep(0.1)
        assert min(a.ping(target)) >= 80
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
        pass_through(a)


def test_the_seeds_command_line_and_tools_are_in_the_image(boxes: list[Box]) -> None:
    """The seed's setup makes its default spec with `rush -h | grep "Example config" | awk
    '{print $5}'`; its README has users run tcpdump, curl, wget, netstat and lsof inside."""
    box = boxes[0]
    example = box.exec("sh", "-c", "/opt/lib/rush -h | grep 'Example config' | awk '{print $5}'")
    spec = json.loads(example)
    assert spec["default_link"]["ingress"]["rate"] == 10_000_000
    status = docker("exec", box.name, "/opt/lib/rush", "-h", check=False)
    assert status.startswith("Invalid number of arguments.")
    tools = "tcpdump curl wget netstat lsof iperf3 python3"
    found = box.exec("sh", "-c", f"for t in {tools}; do command -v $t >/dev/null && echo $t; done")
    assert found.split() == tools.split()


def test_a_host_off_the_synthetic_network_is_reached_through_the_shaped_link(
    boxes: list[Box],
) -> None:
    """The default route goes through the shaped interface, as in the seed: a host the box
    has no network to (the internet, here another Docker network's gateway) is shaped too."""
    a, _ = boxes
    pass_through(a)
    assert "veth0s" in a.exec("ip", "route", "show", "default")
    assert a.ping(FAR_HOST), "the far host does not answer"
    assert a.http("PATCH", "/qos", {"egress.latency": 30})[0] == 200
    try:
        assert min(a.ping(FAR_HOST)) >= 30
    finally:
        pass_through(a)


def test_the_api_answers_on_localhost_inside(boxes: list[Box]) -> None:
    spec = json.loads(boxes[0].exec("curl", "-sf", "http://localhost/qos"))
    assert set(spec) == {"default_link", "flows"}


def no_bypass(a: Box, b: Box, version: int, runs: int = 20) -> None:
    """B's outer interface answers neither ARP nor IPv6 neighbour discovery: a peer that has
    just forgotten B's address learns only the one behind B's engine, so every ping crosses it
    both ways (20 ms in, 20 ms out, set on B)."""
    b.exec("curl", "-sf", "-X", "POST", "http://localhost/qos",
           "-d", '{"ingress": {"latency": 20}, "egress": {"latency": 20}}')  # fmt: skip
    target = b.synthetic_ip(version)
    for _ in range(runs):
        a.exec("ip", "neigh", "flush", "dev", "veth0s")
        b.exec("ip", "neigh", "flush", "dev", "veth0s")
        times = a.ping(target, count=2)
        assert times and min(times) >= 40, (version, times)


def test_no_packet_bypasses_the_engine_with_a_fresh_neighbour_cache(boxes: list[Box]) -> None:
    a, b = boxes
    pass_through(a)
    try:
        no_bypass(a, b, 4)
    finally:
        pass_through(b)


def test_no_packet_bypasses_the_engine_over_ipv6(boxes: list[Box]) -> None:
    """The same on a dual-stack synthetic network; the containers keep IPv6 on their new
    interfaces with `--sysctl net.ipv6.conf.default.disable_ipv6=0` (/proc/sys is read-only to
    the entrypoint). Configured through the API on localhost inside, no port published."""
    network = f"{RUN}-v6"
    pair = [Box(f"{RUN}-v6{n}", 0) for n in "ab"]
    try:
        docker("network", "create", "--ipv6", network, "--subnet", "198.18.120.0/24",
               "--subnet", SUBNET6)  # fmt: skip
        for box in pair:
            docker("create", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
                   "--env", "SYNTHETIC_NETWORK=198.18.120.0/24",
                   "--sysctl", "net.ipv6.conf.default.disable_ipv6=0",
                   "--name", box.name, IMAGE)  # fmt: skip
            docker("network", "connect", network, box.name)
            docker("start", box.name)
        for box in pair:
            deadline = time.monotonic() + 30
            while not box.exec("curl", "-sf", "http://localhost/qos", check=False):
                assert time.monotonic() < deadline, docker("logs", box.name, check=False)
                time.sleep(0.3)
        no_bypass(pair[0], pair[1], 6)
        no_bypass(pair[0], pair[1], 4, runs=5)
    finally:
        for box in pair:
            docker("rm", "-f", box.name, check=False)
        docker("network", "rm", network, check=False)


def test_a_command_runs_after_the_setup_and_its_exit_code_is_the_containers(
    boxes: list[Box],
) -> None:
    done = subprocess.run(
        ["docker", "run", "--rm", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", IMAGE,
         "sh", "-c", "ip -o addr show veth0s | grep -q inet && exit 3"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr


def test_the_node_build_argument_adds_nodejs(boxes: list[Box]) -> None:
    """Images derived FROM the seed's could rely on Node.js, which it was based on."""
    image = f"{IMAGE}-node"
    try:
        docker("build", "-q", "-t", image, "--build-arg", f"BASE={BASE_IMAGE}",
               "--build-arg", "NODE=1", str(ROOT), timeout=900)  # fmt: skip
        version = docker("run", "--rm", "--entrypoint", "node", image, "--version")
        assert version.startswith("v"), version
    finally:
        docker("image", "rm", "-f", image, check=False)


def test_a_posted_spec_survives_docker_restart(boxes: list[Box]) -> None:
    _, b = boxes
    assert b.http("PATCH", "/qos", {"egress.latency": 17})[0] == 200
    docker("restart", "-t", "10", b.name, timeout=60)
    b.wait_served()
    assert b.http("GET", "/qos")[1]["default_link"]["egress"]["latency"] == 17
    pass_through(b)


def test_docker_stop_ends_everything_cleanly(boxes: list[Box]) -> None:
    """Last in this module: SIGTERM stops the application, the engine and the API at once
    (docker would wait its 10 s grace period and SIGKILL if the entrypoint ignored it)."""
    _, b = boxes
    started = time.monotonic()
    docker("stop", "-t", "10", b.name, timeout=30)
    assert time.monotonic() - started < 5
    state = json.loads(docker("inspect", "--format", "{{json .State}}", b.name))
    assert state["ExitCode"] == 0 and not state["OOMKilled"], state
