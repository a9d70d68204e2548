"""`make test-container`: the sidecar for real, beside containers of another image (the plain
Debian base, which has no linkshaper): by hand with `docker run --network container:APP`, in
the Docker Compose example, and through the testcontainers module. Every link is checked with
ping or iperf3 against its spec; what the test made is removed, also when it fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.lab.harness import ping_times
from engine.protocol.http_client import HttpApiError, HttpClient
from tests.container.test_container import BASE_IMAGE, ROOT, docker

pytestmark = pytest.mark.container

RUN = f"lssc{os.getpid() % 100000}"
IMAGE = f"linkshaper-sidecar-test:{RUN}"
NETWORK = f"{RUN}-net"
SUBNET = "198.18.120.0/24"
COMPOSE_SUBNET = "198.18.130.0/24"


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0
    ):
        pytest.skip("no Docker engine (make test-container starts one)")
    docker("build", "-q", "-t", IMAGE, "--build-arg", f"BASE={BASE_IMAGE}", str(ROOT),
           timeout=900)  # fmt: skip
    try:
        yield IMAGE
    finally:
        docker("image", "rm", "-f", IMAGE, check=False)


def ip_of(container: str) -> str:
    out = docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", container)
    address: str = next(n["IPAddress"] for n in json.loads(out).values() if n["IPAddress"])
    return address


def interface_state(container: str) -> tuple[str, str, str]:
    """What the application sees of its network: addresses, routes, links (names only)."""
    addrs = docker("exec", container, "ip", "-br", "-4", "addr")
    routes = docker("exec", container, "ip", "-4", "route")
    listed = docker("exec", container, "ip", "-br", "link").splitlines()
    links = " ".join(sorted(line.split()[0] for line in listed))
    return addrs, routes, links


def ping(source: str, target: str, count: int = 6) -> list[float]:
    out = docker("exec", source, "ping", "-n", "-c", str(count), "-i", "0.1", "-W", "2", target,
                 check=False)  # fmt: skip
    return ping_times(out)


@pytest.fixture
def app_and_peer(image: str) -> Iterator[tuple[str, str]]:
    """Two containers of the base image (no linkshaper in it) on a network of their own."""
    app, peer = f"{RUN}-app", f"{RUN}-peer"
    docker("network", "create", NETWORK, "--subnet", SUBNET)
    try:
        for name in (app, peer):
            docker("run", "-d", "--name", name, "--network", NETWORK, BASE_IMAGE,
                   "sleep", "infinity")  # fmt: skip
        yield app, peer
    finally:
        for name in (f"{RUN}-sidecar", f"{RUN}-sidecar2", app, peer):
            docker("rm", "-f", name, check=False)
        docker("network", "rm", NETWORK, check=False)


def start_sidecar(image: str, app: str, name: str, *env: str) -> HttpClient:
    docker("run", "-d", "--name", name, "--network", f"container:{app}",
           "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
           *[arg for e in env for arg in ("--env", e)], image, "sidecar")  # fmt: skip
    api = HttpClient(f"http://{ip_of(app)}:80")
    try:
        api.wait_ready(30.0)
    except HttpApiError:
        raise AssertionError(docker("logs", name, check=False)) from None
    return api


def test_the_sidecar_shapes_any_image_and_gives_its_interface_back(
    image: str, app_and_peer: tuple[str, str]
) -> None:
    app, peer = app_and_peer
    before = interface_state(app)
    target = ip_of(app)
    assert min(ping(peer, target)) < 20
    api = start_sidecar(image, app, f"{RUN}-sidecar",
                        'LINKSHAPER_SPEC_JSON={"egress": {"latency": "40ms"}}')  # fmt: skip
    assert min(ping(peer, target)) >= 40  # the app's replies wait 40 ms
    # The control socket is served too (what `docker exec -it SIDECAR tui` attaches to).
    over_socket = json.loads(docker("exec", f"{RUN}-sidecar", "linkshaper", "get"))
    assert over_socket["default_link"]["egress"]["latency"] == 40
    # Blocked both ways: pings are lost, the API (its port never shaped) still answers.
    api.set(rate=0)
    assert ping(peer, target, count=3) == []
    assert api.spec().default_link.egress.rate == 0
    api.replace({"egress": {"latency": "25ms"}, "ingress": {"latency": "5ms"}})
    assert min(ping(peer, target)) >= 30
    # A restart re-applies the persisted spec.
    docker("restart", "-t", "10", f"{RUN}-sidecar", timeout=60)
    api.wait_ready(30.0)
    assert api.spec().default_link.egress.latency == 25
    assert min(ping(peer, target)) >= 30
    # Stopped: the application's network is as it was, and unshaped.
    docker("stop", "-t", "10", f"{RUN}-sidecar", timeout=30)
    assert interface_state(app) == before
    assert min(ping(peer, target)) < 20
    # Killed (no time to give back): the next sidecar undoes it first, then shapes.
    api = start_sidecar(image, app, f"{RUN}-sidecar2")
    docker("kill", f"{RUN}-sidecar2")
    assert "veth0" in interface_state(app)[2]
    docker("rm", "-f", f"{RUN}-sidecar2")
    api = start_sidecar(image, app, f"{RUN}-sidecar2",
                        'LINKSHAPER_SPEC_JSON={"ingress": {"latency": "15ms"}}')  # fmt: skip
    assert min(ping(peer, target)) >= 15
    docker("stop", "-t", "10", f"{RUN}-sidecar2", timeout=30)
    assert interface_state(app) == before


def compose(project: str, directory: Path, *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        ["docker-compose", "-p", project, "-f", "compose.yaml", "-f", "test-network.yaml", *args],
        cwd=directory, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "LINKSHAPER_IMAGE": IMAGE, "APP_IMAGE": IMAGE,
             "CLIENT_API_PORT": "3010", "SERVER_API_PORT": "3011"},
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"docker-compose {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def iperf3_goodput(project: str, directory: Path) -> float:
    out = compose(project, directory, "exec", "-T", "client",
                  "iperf3", "-c", "server", "-t", "4", "-O", "1", "-J")  # fmt: skip
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"])


def test_the_compose_example_shapes_each_service_by_its_spec(image: str, tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (make test-container installs it)")
    directory = tmp_path / "compose"
    shutil.copytree(ROOT / "examples" / "compose", directory)  # its spec file gets rewritten
    (directory / "test-network.yaml").write_text(
        f"networks:\n  default:\n    ipam:\n      config:\n        - subnet: {COMPOSE_SUBNET}\n"
    )
    project = f"{RUN}compose"
    client_api, server_api = (
        HttpClient("http://127.0.0.1:3010"),
        HttpClient("http://127.0.0.1:3011"),
    )
    try:
        compose(project, directory, "up", "-d")
        client_api.wait_ready(60.0)
        server_api.wait_ready(60.0)
        # client: 30 ms each way (its spec file); server: 10 ms out, 20 Mbit/s in (a variable).
        assert client_api.spec().default_link.egress.latency == 30
        assert server_api.spec().default_link.ingress.rate == 20_000_000
        out = compose(project, directory, "exec", "-T", "client", "ping", "-n", "-c", "6",
                      "-i", "0.2", "server")  # fmt: skip
        assert min(ping_times(out)) >= 70
        full_frame = 1448 / 1538  # TCP payload of a full frame on the wire
        assert iperf3_goodput(project, directory) == pytest.approx(20e6 * full_frame, rel=0.08)
        server_api.set("ingress", rate="5mbit")
        assert iperf3_goodput(project, directory) == pytest.approx(5e6 * full_frame, rel=0.08)
        client_api.set("egress", latency="35ms")  # written back to the client's spec file
        spec_file = directory / "specs" / "client" / "synthetic_network.json"
        assert json.loads(spec_file.read_text())["default_link"]["egress"]["latency"] == 35
    finally:
        compose(project, directory, "down", "-t", "10")
    left = docker("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}")
    networks = docker(
        "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}"
    )
    assert left.strip() == "" and networks.strip() == ""


def test_the_testcontainers_module_shapes_a_container_it_is_given(image: str) -> None:
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # no registry for its image
    from testcontainers.core.container import DockerContainer

    from engine.testing.linkshaper_container import LinkshaperContainer

    app = DockerContainer(BASE_IMAGE).with_command("sleep infinity")
    peer = DockerContainer(BASE_IMAGE).with_command("sleep infinity")
    with app, peer:
        target = ip_of(app.get_wrapped_container().id)
        peer_id = peer.get_wrapped_container().id
        spec = {"egress": {"latency": "30ms"}}
        with LinkshaperContainer(app, image=image, spec=spec, http_port=8080) as shaper:
            assert shaper.api.url == f"http://{target}:8080"
            assert shaper.api.spec().default_link.egress.latency == 30
            assert min(ping(peer_id, target)) >= 30
            shaper.api.set(latency="10ms")  # both ways: 30 ms out becomes 10, 10 ms in
            assert shaper.api.spec().default_link.egress.latency == 10
            assert min(ping(peer_id, target)) >= 20
        time.sleep(0.5)
        assert min(ping(peer_id, target)) < 20  # given back, unshaped
