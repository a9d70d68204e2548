"""The container entrypoint: what the seed's setup did, then the engine, the HTTP API and the
application.

1. Find the interface on `$SYNTHETIC_NETWORK` (a CIDR; default: eth0's subnet).
2. Move its address, its MAC and the routes through it onto `veth0s`, the inner end of a new
   veth pair; the engine forwards between that interface (outer) and `veth0` (inner). The
   outer interface gets a fresh MAC and answers neither ARP nor IPv6, so every packet of the
   synthetic network goes through the engine.
3. Start `linkshaper run OUTER veth0 SPEC` with the HTTP API on port 80, bound to the control
   network (eth0's address) when the synthetic network is another interface.
4. Run `$ENTRY` (with sh -c), else `/opt/bin/entry` if present, else wait. SIGTERM or SIGINT
   stops everything; the exit status is the application's.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from types import FrameType

from engine.environments.commands import engine_command, run_command
from engine.kernel.processes import stop_process
from engine.model.errors import LinkshaperError
from engine.protocol.client import wait_for_engine
from engine.protocol.control import ControlError

log = logging.getLogger("linkshaper")

SPEC_PATH = "/opt/etc/synthetic_network.json"
CONTROL_PATH = "/run/linkshaper/control.sock"
INNER, APP_SIDE = "veth0", "veth0s"
HTTP_PORT = 80


class SetupError(LinkshaperError, RuntimeError):
    pass


def ip(*args: str) -> str:
    return run_command(["ip", *args], error=SetupError).stdout


def sysctl(path: str, value: str) -> None:
    try:
        with open(f"/proc/sys/{path}", "w") as handle:
            handle.write(value)
    except OSError as exc:
        log.warning("cannot set %s: %s", path, exc.strerror)


@dataclass(frozen=True)
class Address:
    ifname: str
    cidr: str  # 198.18.100.2/24
    mac: str


def addresses() -> list[Address]:
    found: list[Address] = []
    for link in json.loads(ip("-j", "addr", "show")):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and link["ifname"] != "lo":
                cidr = f"{info['local']}/{info['prefixlen']}"
                found.append(Address(link["ifname"], cidr, link.get("address", "")))
    return found


def find_synthetic(network: str | None, found: list[Address]) -> Address:
    if not network:
        for address in found:
            if address.ifname == "eth0":
                return address
        raise SetupError("no SYNTHETIC_NETWORK given and eth0 has no IPv4 address")
    try:
        wanted = ipaddress.ip_network(network, strict=False)
    except ValueError as exc:
        raise SetupError(f"SYNTHETIC_NETWORK: {exc}") from None
    for address in found:
        if ipaddress.ip_interface(address.cidr).ip in wanted:
            return address
    raise SetupError(f"SYNTHETIC_NETWORK: no interface has an address in {wanted}")


def routes_via(ifname: str) -> list[dict[str, str]]:
    """Gateway routes through the interface (the connected subnet moves with the address)."""
    return [r for r in json.loads(ip("-j", "route", "show", "dev", ifname)) if r.get("gateway")]


def take_over(synthetic: Address) -> None:
    outer = synthetic.ifname
    routes = routes_via(outer)
    ip("link", "add", INNER, "type", "veth", "peer", "name", APP_SIDE)
    ip("addr", "del", synthetic.cidr, "dev", outer)
    ip("link", "set", APP_SIDE, "address", synthetic.mac)
    ip("link", "set", outer, "address", _random_mac())
    sysctl(f"net/ipv4/conf/{outer}/arp_ignore", "1")
    sysctl(f"net/ipv6/conf/{outer}/disable_ipv6", "1")
    for ifname in (INNER, APP_SIDE, outer):
        ip("link", "set", ifname, "up")
    ip("addr", "add", synthetic.cidr, "dev", APP_SIDE)
    for route in routes:
        ip("route", "replace", route["dst"], "via", route["gateway"], "dev", APP_SIDE)
    log.info("synthetic network: %s moved from %s to %s", synthetic.cidr, outer, APP_SIDE)


def _random_mac() -> str:
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{b:02x}" for b in raw)


def http_host(synthetic: Address, found: list[Address]) -> str:
    """The control network's address when there is one apart from the synthetic network."""
    for address in found:
        if address.ifname == "eth0" and address.ifname != synthetic.ifname:
            return str(ipaddress.ip_interface(address.cidr).ip)
    log.warning("no separate control network: the HTTP API listens on all addresses")
    return "0.0.0.0"


class Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise Stop


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="linkshaper: %(message)s", stream=sys.stderr)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    processes: list[subprocess.Popen[bytes]] = []
    code = 0
    try:
        found = addresses()
        synthetic = find_synthetic(os.environ.get("SYNTHETIC_NETWORK"), found)
        host = http_host(synthetic, found)
        take_over(synthetic)
        spec = os.environ.get("LINKSHAPER_SPEC", SPEC_PATH)
        os.makedirs(os.path.dirname(spec), exist_ok=True)
        command = engine_command(
            synthetic.ifname, INNER, spec, CONTROL_PATH, "--http", f"{host}:{HTTP_PORT}"
        )
        engine = subprocess.Popen(command)
        processes.append(engine)
        try:  # both workers forwarding before the application starts
            wait_for_engine(CONTROL_PATH, 15.0, alive=lambda: engine.poll() is None)
        except ControlError as exc:
            raise SetupError(str(exc)) from None
        entry = os.environ.get("ENTRY")
        app: subprocess.Popen[bytes] | None = None
        if entry:
            app = subprocess.Popen(["sh", "-c", entry])
        elif os.access("/opt/bin/entry", os.X_OK):
            app = subprocess.Popen(["/opt/bin/entry"])
        if app is not None:
            processes.append(app)
            code = app.wait()
        else:
            log.info("no $ENTRY and no /opt/bin/entry: waiting (docker stop ends it)")
            code = engine.wait()
    except SetupError as exc:
        log.error("%s", exc)
        code = 1
    except Stop:
        code = 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in reversed(processes):
            stop_process(process)
    return code


if __name__ == "__main__":
    sys.exit(main())
