"""A three-namespace lab: client ↔ box ↔ server, addressed from 198.18.0.0/15.

The client sits behind the box's `inner` interface and the server behind its `outer` one, so an
engine in the box shapes the client's downloads as ingress and its uploads as egress. The lab
creates and deletes only its own namespaces; deleting a namespace removes its veths too.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from engine.model.errors import LinkshaperError
from engine.namespaces.commands import (
    engine_command,
    in_netns,
    kill_namespace_processes,
    network_namespaces,
    run_command,
)

CLIENT_IP = "198.18.0.1"
SERVER_IP = "198.18.0.2"
PREFIX_LEN = 24
CLIENT_IP6 = "2001:2::1"  # RFC 5180 benchmarking range
SERVER_IP6 = "2001:2::2"
INNER = "inner"
OUTER = "outer"
ROLES = ("client", "box", "server")


class LabError(LinkshaperError, RuntimeError):
    pass


def _run(args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_command(args, check=check, error=LabError)


@dataclass(frozen=True)
class Lab:
    prefix: str = "ls"

    def ns(self, role: str) -> str:
        if role not in ROLES:
            raise LabError(f"unknown namespace {role!r}: use client, box or server")
        return f"{self.prefix}-{role}"

    @property
    def namespaces(self) -> list[str]:
        return [self.ns(role) for role in ROLES]

    def exists(self) -> bool:
        return set(self.namespaces) <= network_namespaces()

    def in_ns(self, role: str, *args: str) -> list[str]:
        return in_netns(self.ns(role), *args)

    def engine_command(
        self, spec_path: str, control: str, *extra: str, profiles: tuple[str, str] | None = None
    ) -> list[str]:
        """`linkshaper run outer inner SPEC --control PATH` in the box, with this Python."""
        command = engine_command(OUTER, INNER, spec_path, control, *extra, profiles=profiles)
        return self.in_ns("box", *command)

    def run(self, role: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_command(args, self.ns(role), check, LabError)

    def up(self, offloads: bool = True) -> None:
        """Create the lab (removing a stale one of the same prefix first)."""
        self.down()
        try:
            for name in self.namespaces:
                _run(["ip", "netns", "add", name])
            client, box, server = self.namespaces
            for far_end, box_side in ((client, INNER), (server, OUTER)):
                veth = ["ip", "link", "add", "eth0", "netns", far_end, "type", "veth"]
                _run([*veth, "peer", "name", box_side, "netns", box])
            for ifname in (INNER, OUTER):
                # The box only forwards: its own IPv6 chatter would be shaped as traffic.
                self.run("box", "sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=1")
                self.run("box", "ip", "link", "set", "dev", ifname, "up")
            for role, ip4, ip6 in (
                ("client", CLIENT_IP, CLIENT_IP6),
                ("server", SERVER_IP, SERVER_IP6),
            ):
                self.run(role, "ip", "addr", "add", f"{ip4}/{PREFIX_LEN}", "dev", "eth0")
                self.run(role, "ip", "-6", "addr", "add", f"{ip6}/64", "dev", "eth0", "nodad")
                self.run(role, "ip", "link", "set", "dev", "eth0", "up")
                self.run(role, "ip", "link", "set", "dev", "lo", "up")
            self.run("box", "ip", "link", "set", "dev", "lo", "up")
            self.set_offloads(offloads)
        except Exception:
            self.down()
            raise

    def set_offloads(self, on: bool) -> None:
        """Switch checksum offload, TSO and GSO on or off on every veth of the lab."""
        if shutil.which("ethtool") is None:
            raise LabError("ethtool is not installed")
        state = "on" if on else "off"
        features = ["tx", state, "tso", state, "gso", state, "gro", "off"]
        for role, ifname in (
            ("client", "eth0"),
            ("server", "eth0"),
            ("box", INNER),
            ("box", OUTER),
        ):
            self.run(role, "ethtool", "-K", ifname, *features, check=False)

    def bridge(self, on: bool) -> None:
        """A Linux bridge in the box instead of an engine: the reference for benchmarks."""
        if on:
            self.run("box", "ip", "link", "add", "br0", "type", "bridge")
            for ifname in (INNER, OUTER):
                self.run("box", "ip", "link", "set", "dev", ifname, "master", "br0")
            self.run("box", "ip", "link", "set", "dev", "br0", "up")
        else:
            self.run("box", "ip", "link", "del", "br0", check=False)

    def down(self) -> None:
        present = network_namespaces()
        for name in self.namespaces:
            if name in present:
                kill_namespace_processes(name)
                _run(["ip", "netns", "del", name], check=False)

    def status(self) -> str:
        present = network_namespaces()
        lines = []
        for role in ROLES:
            name = self.ns(role)
            if name not in present:
                lines.append(f"{name}: absent")
                continue
            addrs = self.run(role, "ip", "-brief", "addr", check=False).stdout.strip()
            lines.append(f"{name}:")
            lines.extend(f"  {line}" for line in addrs.splitlines())
        return "\n".join(lines)
