"""What the container's entrypoint and the sidecar share: taking over the synthetic network's
interface (its addresses, MAC and routes move onto the inner end of a veth pair the engine
forwards to; see container.py for the steps), the paths both use, and the signal that stops
them. Kept apart so neither imports the other.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from dataclasses import dataclass
from types import FrameType

from engine.model.errors import LinkshaperError
from engine.namespaces.commands import run_command

log = logging.getLogger("linkshaper")

SPEC_PATH = "/opt/etc/synthetic_network.json"
CONTROL_PATH = "/run/linkshaper/control.sock"
INNER, APP_SIDE = "veth0", "veth0s"
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


class Stop(Exception):
    pass


def raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise Stop
