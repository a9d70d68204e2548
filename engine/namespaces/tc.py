"""The tc backend: a namespace shaped in the kernel, as the seed did. The download is egress on
`lsvN` (parent side), the upload egress on `lspN` (inside); each gets HTB (or TBF) at its rate.
Latency, jitter and loss need sch_netem; where the kernel lacks it the request is refused
before anything is made. Counters come from the kernel over netlink (pyroute2).
"""

from __future__ import annotations

from typing import Any

from engine.doctor.tc_probe import probe
from engine.model.spec import UNLIMITED_RATE
from engine.model.units import format_rate
from engine.namespaces.namespace import Namespace, NamespaceError, Shaping, run


def netem_available() -> bool:
    """Whether this kernel can add a netem qdisc, tried as `linkshaper doctor` tries it: in a
    network namespace that only a child process holds, so nothing is left behind even when
    this command is killed (a named probe namespace was, before)."""
    try:
        return probe()["qdisc_netem"] is None
    except OSError as exc:
        raise NamespaceError(f"cannot tell whether this kernel has netem: {exc}") from None


def _tc_rate(device: str, rate: int | None, qdisc: str, netns: str | None) -> None:
    if rate is None or rate >= UNLIMITED_RATE:
        return
    bits = f"{rate}bit"
    if qdisc == "tbf":
        burst = max(1600, rate // 8 // 100)  # 10 ms worth, at least a full frame
        run("tc", "qdisc", "add", "dev", device, "root", "handle", "1:", "tbf", "rate", bits,
            "burst", str(burst), "latency", "50ms", netns=netns)  # fmt: skip
        return
    run("tc", "qdisc", "add", "dev", device, "root", "handle", "1:", "htb", "default", "10",
        netns=netns)  # fmt: skip
    run("tc", "class", "add", "dev", device, "parent", "1:", "classid", "1:10", "htb",
        "rate", bits, "ceil", bits, netns=netns)  # fmt: skip


def _tc_netem(device: str, shaping: Shaping, shaped: bool, netns: str | None) -> None:
    if not shaping.needs_netem:
        return
    where = ["parent", "1:10"] if shaped else ["root"]
    args = ["delay", f"{shaping.latency_ms}ms"]
    if shaping.jitter_ms:
        args.append(f"{shaping.jitter_ms}ms")
    if shaping.loss:
        args += ["loss", f"{shaping.loss * 100}%"]
    run("tc", "qdisc", "add", "dev", device, *where, "handle", "10:", "netem", *args, netns=netns)


def add_tc(ns: Namespace) -> None:
    run("ip", "addr", "add", f"{ns.ns_ip}/30", "dev", ns.inside, netns=ns.name)
    run("ip", "link", "set", ns.inside, "up", netns=ns.name)
    run("ip", "route", "add", "default", "via", ns.parent_ip, netns=ns.name)
    s = ns.shaping
    _tc_rate(ns.outside, s.ingress_rate, ns.qdisc, ns.parent)  # download: out of the parent
    _tc_rate(ns.inside, s.egress_rate, ns.qdisc, ns.name)  # upload: out of the namespace
    _tc_netem(ns.outside, s, s.ingress_rate is not None, ns.parent)
    _tc_netem(ns.inside, s, s.egress_rate is not None, ns.name)


def remove_tc(ns: Namespace) -> None:
    """The tc rules on both ends gone (the namespace is handed to the engine)."""
    for device, where in ((ns.outside, ns.parent), (ns.inside, ns.name)):
        run("tc", "qdisc", "del", "dev", device, "root", netns=where, check=False)


def tc_lines(device: str, netns: str | None) -> list[str]:
    """The rules on a device as tc prints them, with the kernel's counters (netlink)."""
    from pyroute2 import IPRoute, NetNS

    lines: list[str] = []
    ipr: Any = NetNS(netns) if netns else IPRoute()
    try:
        found = ipr.link_lookup(ifname=device)
        if not found:
            return [f"{device}: gone"]
        index = found[0]
        for kind, items in (("qdisc", ipr.get_qdiscs(index=index)),
                            ("class", ipr.get_classes(index=index))):  # fmt: skip
            for item in items:
                handle = item["handle"]
                name = item.get_attr("TCA_KIND")
                stats = item.get_attr("TCA_STATS") or {}
                options = _describe_options(name, item)
                minor = f"{handle & 0xFFFF:x}" if handle & 0xFFFF else ""
                lines.append(
                    f"{kind} {name} {handle >> 16:x}:{minor} dev {device} {options}"
                    f"  sent {stats.get('bytes', 0)} bytes {stats.get('packets', 0)} pkt "
                    f"(dropped {stats.get('drop', 0)}, overlimits {stats.get('overlimits', 0)})"
                )
    finally:
        ipr.close()
    return lines


def _describe_options(kind: str | None, item: Any) -> str:
    """The rate of an HTB class or a TBF qdisc (the kernel keeps it in bytes per second)."""
    options = item.get_attr("TCA_OPTIONS")
    names = {"htb": "TCA_HTB_PARMS", "tbf": "TCA_TBF_PARMS"}
    if options is None or kind not in names:
        return ""
    params = options.get_attr(names[kind])
    rate = int(params.get("rate", 0)) * 8 if params else 0
    return f"rate {format_rate(rate)}" if rate else ""
