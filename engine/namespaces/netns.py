"""Shaped network namespaces: `linkshaper ns add|list|show|exec|del`.

Each namespace NAME gets a veth pair to its parent (the root namespace, or another one named
in the config): `lsvN` in the parent with the first address of a /30 from the pool, `lspN`
inside. The namespace's default route goes to the parent's address. Two backends shape it:

- tc: in the kernel, as the seed did. The download is egress on `lsvN` (parent side), the
  upload egress on `lspN` (inside); each gets HTB (or TBF) at its rate. Latency, jitter and
  loss need sch_netem; where the kernel lacks it the request is refused before anything is
  made. Counters come from the kernel over netlink (pyroute2).
- engine: a linkshaper engine inside the namespace forwards between `lspN` (outer) and
  `lsiN`, whose peer `lsaN` carries the namespace's address. Every engine feature applies;
  its control socket is /run/linkshaper/ns/NAME.sock (for `tui --ns NAME`, `linkshaper set`,
  and `linkshaper http --ns NAME`).

What was made is recorded in /run/linkshaper/ns/NAME.json, so `list`, `show` and `del` know it.
This module makes, removes and describes a namespace; namespace.py holds the config and the
record, tc.py and engine_backend.py the two backends.
"""

from __future__ import annotations

import contextlib
import ipaddress

from engine.kernel.processes import stop_pid
from engine.model.units import format_duration_ms, format_rate
from engine.namespaces.commands import kill_namespace_processes, network_namespaces
from engine.namespaces.engine_backend import add_engine, engine_lines
from engine.namespaces.namespace import (
    STATE_DIR,
    Namespace,
    NamespaceError,
    NsConfig,
    Shaping,
    all_namespaces,
    run,
)
from engine.namespaces.tc import add_tc, netem_available, tc_lines


def _free_index(config: NsConfig) -> int:
    used = {ns.index for ns in all_namespaces()}
    capacity = ipaddress.ip_network(config.pool).num_addresses // 4
    for index in range(capacity):
        if index not in used:
            return index
    raise NamespaceError(f"the pool {config.pool} is full ({capacity} namespaces)")


def add(
    name: str,
    shaping: Shaping,
    config: NsConfig,
    backend: str | None = None,
    http: str | None = None,
    start: bool = True,
) -> Namespace:
    """Make the namespace, or nothing: any failure removes what was made so far."""
    backend = backend or config.backend
    if backend not in ("tc", "engine"):
        raise NamespaceError(f"--backend: {backend!r} is not tc or engine")
    if not name.replace("-", "").replace("_", "").isalnum() or len(name) > 40:
        raise NamespaceError(f"{name!r}: use letters, digits, - and _ (at most 40)")
    if name in network_namespaces():
        raise NamespaceError(f"a network namespace {name!r} exists already")
    if config.parent is not None and config.parent not in network_namespaces():
        raise NamespaceError(f"parent namespace {config.parent!r} does not exist")
    if backend == "tc" and shaping.needs_netem and not netem_available():
        raise NamespaceError(
            "the tc backend needs the kernel's sch_netem for latency, jitter and loss, and "
            "this kernel has no netem qdisc; use --backend engine, or only rates"
        )
    if backend == "engine":
        shaping.spec()  # checked before anything is made
    index = _free_index(config)
    pool = ipaddress.IPv4Network(config.pool)
    subnet = list(pool.subnets(new_prefix=30))[index]
    hosts = list(subnet.hosts())
    ns = Namespace(name, index, backend, config.parent, str(hosts[0]), str(hosts[1]), 30,
                   config.qdisc, shaping)  # fmt: skip
    parent = config.parent
    try:
        run("ip", "netns", "add", name)
        ns.save()
        run("ip", "link", "add", ns.outside, "type", "veth", "peer", "name", ns.inside,
            "netns", name, netns=parent)  # fmt: skip
        run("ip", "addr", "add", f"{ns.parent_ip}/30", "dev", ns.outside, netns=parent)
        run("ip", "link", "set", ns.outside, "up", netns=parent)
        run("ip", "link", "set", "lo", "up", netns=name)
        if config.forward:
            run("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=parent)
        if config.nat:
            rule = ["POSTROUTING", "-s", config.pool, "!", "-d", config.pool, "-j", "MASQUERADE"]
            present = run("iptables", "-t", "nat", "-C", *rule, netns=parent, check=False)
            if present.returncode != 0:  # once for the pool, however many namespaces
                run("iptables", "-t", "nat", "-A", *rule, netns=parent)
        if backend == "tc":
            add_tc(ns)
        else:
            add_engine(ns, http, start)
        ns.save()
        return ns
    except BaseException:
        remove(ns)
        raise


def remove(ns: Namespace) -> None:
    """Engine stopped, namespace (and with it both veth ends) deleted, state gone."""
    if ns.engine_pid:
        stop_pid(ns.engine_pid)
    if ns.name in network_namespaces():
        kill_namespace_processes(ns.name)  # anything still running inside (an `ns exec`)
        run("ip", "netns", "del", ns.name, check=False)
    run("ip", "link", "del", ns.outside, netns=ns.parent, check=False)
    for suffix in (".json", ".spec.json", ".log", ".sock", ".key"):
        with contextlib.suppress(FileNotFoundError):
            (STATE_DIR / f"{ns.name}{suffix}").unlink()


def describe(ns: Namespace) -> str:
    s = ns.shaping
    down = format_rate(s.ingress_rate) if s.ingress_rate else "unlimited"
    up = format_rate(s.egress_rate) if s.egress_rate else "unlimited"
    lines = [
        f"{ns.name}: backend {ns.backend}, address {ns.ns_ip}/30 via {ns.parent_ip} "
        f"({ns.parent or 'root namespace'})",
        f"  download {down}, upload {up}, latency {format_duration_ms(s.latency_ms)}, "
        f"jitter {format_duration_ms(s.jitter_ms)}, loss {s.loss * 100:g} %",
    ]
    if ns.backend == "tc":
        lines.append(f"  download (egress on {ns.outside}, parent side):")
        lines += [f"    {line}" for line in tc_lines(ns.outside, ns.parent)]
        lines.append(f"  upload (egress on {ns.inside}, inside):")
        lines += [f"    {line}" for line in tc_lines(ns.inside, ns.name)]
    else:
        lines.append(f"  engine pid {ns.engine_pid}, control {ns.control}")
        lines += [f"    {line}" for line in engine_lines(ns)]
    return "\n".join(lines)
