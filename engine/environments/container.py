"""The container entrypoint: what the seed's setup did, then the engine, the HTTP API and the
application.

1. Find the interface on `$SYNTHETIC_NETWORK` (a CIDR; default: eth0's subnet).
2. Move its addresses (IPv4 and global IPv6), its MAC and the routes through it onto `veth0s`,
   the inner end of a new veth pair; the engine forwards between that interface (outer) and
   `veth0` (inner). The outer interface gets a fresh MAC, ARP off and no IPv6 address, so no
   peer can reach the container's kernel past the engine. The default route goes through
   `veth0s` to the subnet's first address, as the seed's setup guessed, so that everything
   the application sends is shaped (`LINKSHAPER_KEEP_DEFAULT_ROUTE=1` keeps the old one).
   A step that fails stops the container with one line saying which.
3. Start `linkshaper run OUTER veth0 SPEC` with the HTTP API on port 80, on the control
   network's address (eth0's, when the synthetic network is another interface) and loopback.
4. Run the command given to `docker run IMAGE CMD...`, else `$ENTRY` (with sh -c), else
   `/opt/bin/entry` if present, else wait (`docker run IMAGE sidecar`: see sidecar.py).
   SIGTERM or SIGINT stops everything; the exit status is the application's.
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
#: Where the seed's setup kept the two traffic profiles.
PROFILES = (
    "/var/run/synthetic_network-ingress.profile",
    "/var/run/synthetic_network-egress.profile",
)


class SetupError(LinkshaperError, RuntimeError):
    pass


def ip(*args: str) -> str:
    return run_command(["ip", *args], error=SetupError).stdout


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


def routes_via(ifname: str, version: int = 4) -> list[dict[str, str]]:
    """Gateway routes through the interface (the connected subnet moves with the address)."""
    routes = json.loads(ip("-j", f"-{version}", "route", "show", "dev", ifname))
    return [route for route in routes if route.get("gateway")]


def global_ipv6(ifname: str) -> list[str]:
    """The interface's IPv6 addresses other than link-local ones, as CIDRs."""
    found: list[str] = []
    for link in json.loads(ip("-j", "-6", "addr", "show", "dev", ifname)):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet6" and info.get("scope") == "global":
                found.append(f"{info['local']}/{info['prefixlen']}")
    return found


def _ipv6_enabled(ifname: str) -> bool:
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6") as handle:
            return handle.read().strip() == "0"
    except OSError:
        return False


def guessed_gateway(synthetic: Address) -> str:
    """The synthetic subnet's first address, as the seed's setup guessed it."""
    network = ipaddress.ip_interface(synthetic.cidr).network
    return str(network.network_address + 1)


def take_over(synthetic: Address, keep_default_route: bool) -> None:
    outer = synthetic.ifname
    routes, routes6 = routes_via(outer), routes_via(outer, 6)
    inet6 = global_ipv6(outer)
    ip("link", "add", INNER, "type", "veth", "peer", "name", APP_SIDE)
    ip("link", "set", INNER, "alias", f"linkshaper:{outer}")  # what it took (see sidecar.py)
    ip("addr", "del", synthetic.cidr, "dev", outer)
    ip("link", "set", APP_SIDE, "address", synthetic.mac)
    ip("link", "set", outer, "address", _random_mac())
    # Nothing may answer for the container on the outer side: no ARP (IFF_NOARP needs only
    # NET_ADMIN, where /proc/sys is read-only), no IPv6 address, and none made again.
    ip("link", "set", outer, "arp", "off")
    ip("link", "set", outer, "addrgenmode", "none")
    ip("-6", "addr", "flush", "dev", outer)
    for ifname in (INNER, APP_SIDE, outer):
        ip("link", "set", ifname, "up")
    ip("addr", "add", synthetic.cidr, "dev", APP_SIDE)
    for route in routes:
        ip("route", "replace", route["dst"], "via", route["gateway"], "dev", APP_SIDE)
    if inet6 and _ipv6_enabled(APP_SIDE):
        for cidr in inet6:
            ip("-6", "addr", "add", cidr, "dev", APP_SIDE, "nodad")
        for route in routes6:
            ip("-6", "route", "replace", route["dst"], "via", route["gateway"], "dev", APP_SIDE)
    elif inet6:
        log.warning(
            "IPv6 is off on new interfaces in this container (net.ipv6.conf.default."
            "disable_ipv6=1, and /proc/sys is read-only): the application has no IPv6 on the "
            "synthetic network; `docker create --sysctl net.ipv6.conf.default.disable_ipv6=0` "
            "keeps it (%s)", ", ".join(inet6),
        )  # fmt: skip
    if not keep_default_route:
        gateway = guessed_gateway(synthetic)
        ip("route", "replace", "default", "via", gateway, "dev", APP_SIDE)
        log.info("default route via %s on %s: all the application's traffic is shaped", gateway,
                 APP_SIDE)  # fmt: skip
    log.info("synthetic network: %s moved from %s to %s", synthetic.cidr, outer, APP_SIDE)


def _random_mac() -> str:
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{b:02x}" for b in raw)


def http_hosts(synthetic: Address, found: list[Address]) -> list[str]:
    """Where the HTTP API listens: the control network's address (another interface's: eth0's
    if it is not the synthetic one) and loopback; every address when there is no other."""
    others = [a for a in found if a.ifname != synthetic.ifname]
    others.sort(key=lambda address: address.ifname != "eth0")
    if others:
        return [str(ipaddress.ip_interface(others[0].cidr).ip), "127.0.0.1"]
    log.warning("no separate control network: the HTTP API listens on all addresses")
    return ["0.0.0.0"]


def application(command: list[str]) -> list[str] | None:
    """What to run once the link is shaped: `docker run IMAGE CMD...`, else `$ENTRY` (a shell
    line), else /opt/bin/entry; None to wait."""
    if command:
        return command
    entry = os.environ.get("ENTRY")
    if entry:
        return ["sh", "-c", entry]
    if os.access("/opt/bin/entry", os.X_OK):
        return ["/opt/bin/entry"]
    return None


class Stop(Exception):
    pass


def raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise Stop


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["sidecar"]:  # `docker run --network container:APP ... IMAGE sidecar`
        from engine.environments import sidecar

        return sidecar.main(args[1:])
    logging.basicConfig(level=logging.INFO, format="linkshaper: %(message)s", stream=sys.stderr)
    signal.signal(signal.SIGTERM, raise_stop)
    signal.signal(signal.SIGINT, raise_stop)
    processes: list[subprocess.Popen[bytes]] = []
    code = 0
    try:
        found = addresses()
        synthetic = find_synthetic(os.environ.get("SYNTHETIC_NETWORK"), found)
        hosts = http_hosts(synthetic, found)
        keep = os.environ.get("LINKSHAPER_KEEP_DEFAULT_ROUTE", "") not in ("", "0")
        take_over(synthetic, keep_default_route=keep)
        spec = os.environ.get("LINKSHAPER_SPEC", SPEC_PATH)
        os.makedirs(os.path.dirname(spec), exist_ok=True)
        listen = [arg for host in hosts for arg in ("--http", f"{host}:{HTTP_PORT}")]
        if hosts == ["0.0.0.0"]:  # the API is reached through the shaped interface
            listen += ["--unshaped-port", str(HTTP_PORT)]
        engine = subprocess.Popen(engine_command(synthetic.ifname, INNER, spec, CONTROL_PATH,
                                                 *listen, profiles=PROFILES))  # fmt: skip
        processes.append(engine)
        try:  # both workers forwarding before the application starts
            wait_for_engine(CONTROL_PATH, 15.0, alive=lambda: engine.poll() is None)
        except ControlError as exc:
            raise SetupError(str(exc)) from None
        command = application(args)
        if command is not None:
            try:
                app = subprocess.Popen(command)
            except OSError as exc:
                raise SetupError(f"cannot run {command[0]}: {exc.strerror}") from None
            processes.append(app)
            code = app.wait()
        else:
            log.info("no command, no $ENTRY and no /opt/bin/entry: waiting (docker stop ends it)")
            code = engine.wait()
    except SetupError as exc:
        log.error("setup failed, nothing runs: %s", exc)
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
