"""What this machine and this process can do: capabilities (from /proc/self/status), AF_PACKET
with PACKET_VNET_HDR (opened for real), the interfaces named and their offloads, iproute2,
and the kernel's qdiscs and actions (added for real in a throwaway namespace: `tc_probe`)."""

from __future__ import annotations

import errno
import os
import shutil
import socket
from pathlib import Path

from engine.doctor.report import COMMANDS, PURPOSES, Check
from engine.doctor.tc_probe import NAMES, probe
from engine.kernel.afpacket import PACKET_VNET_HDR, SOL_PACKET
from engine.kernel.interface_state import interface_state
from engine.kernel.offloads import driver, offloads

#: capability -> (its bit in CapEff, what needs it).
CAPABILITIES = {
    "NET_RAW": (13, "AF_PACKET sockets: the engine reads and sends frames with them"),
    "NET_ADMIN": (
        12,
        "the engine's socket buffers, promiscuous mode and bringing interfaces "
        "up; `ns` and `lab` make veths and qdiscs",
    ),
    "SYS_ADMIN": (21, "`ns` and `lab` make network namespaces (and doctor its qdisc probe)"),
    "SYS_NICE": (
        23,
        "`run --realtime` runs the workers at a real-time priority with it, so busy "
        "processes beside the engine do not delay its releases (off by default)",
    ),
}

#: What each probed qdisc or action is for, said with its line.
KERNEL_USES = {
    "qdisc_netem": "`ns --backend tc` needs it for latency, jitter and loss; the engine "
    "(`run`, `ns --backend engine`) has its own and does not",
    "qdisc_htb": "`ns --backend tc` limits rates with it (the default `--qdisc htb`)",
    "qdisc_tbf": "`ns --backend tc --qdisc tbf` limits rates with it",
    "qdisc_fq_codel": "not used: the engine's `queue.discipline: fq_codel` is its own",
    "qdisc_clsact": "not used by linkshaper; where tc filters hook in (eBPF, redirects)",
    "action_mirred": "not used by linkshaper; steers traffic between interfaces (e.g. "
    "through an IFB) for tc setups",
}


def effective_capabilities(status: str | None = None) -> int:
    """The CapEff mask of this process (`status`: the text of /proc/self/status)."""
    text = Path("/proc/self/status").read_text() if status is None else status
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def _privilege_fix(flag: str, command: str) -> str:
    """The one way to get a capability for `command`: root, or (already root, so in a container
    or under a narrowed bounding set) the container's flag."""
    if os.geteuid() != 0:
        return f"sudo {command}"
    return f"--cap-add {flag} (docker run/create; Kubernetes: capabilities.add: [{flag}])"


def _capability_fix(name: str, purpose: str) -> str | None:
    """A capability's fix where what the command line asks needs it; where only other commands
    do, the fix for those (SYS_ADMIN: `ns`, `lab`; SYS_NICE: `run --realtime`)."""
    check = f"cap_{name.lower()}"
    if check in PURPOSES[purpose]:
        return _privilege_fix(name, COMMANDS[purpose])
    if name == "SYS_ADMIN":
        return f"only `ns` and `lab` need it: {_privilege_fix(name, COMMANDS['ns'])}"
    if name in ("NET_RAW", "NET_ADMIN"):
        return f"only the engine needs it: {_privilege_fix(name, COMMANDS['run'])}"
    if name == "SYS_NICE":
        return (f"only `run --realtime` needs it: "
                f"{_privilege_fix(name, COMMANDS['run'] + ' --realtime')}")  # fmt: skip
    return None


def capability_checks(purpose: str) -> list[Check]:
    mask = effective_capabilities()
    checks = []
    for name, (bit, use) in CAPABILITIES.items():
        there = bool(mask >> bit & 1)
        checks.append(
            Check(
                f"cap_{name.lower()}",
                "ok" if there else "missing",
                f"CAP_{name} {'in' if there else 'not in'} the effective set: {use}",
                None if there else _capability_fix(name, purpose),
            )
        )
    return checks


def packet_checks(purpose: str) -> list[Check]:
    """An AF_PACKET socket opened for real, and PACKET_VNET_HDR set on it."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            fix = _capability_fix("NET_RAW", purpose)
        else:
            fix = "a kernel with AF_PACKET (CONFIG_PACKET): modprobe af_packet"
        why = f"not tried: no AF_PACKET socket ({exc.strerror})"
        return [
            Check("af_packet", "missing", f"no AF_PACKET socket: {exc.strerror}", fix),
            Check("packet_vnet_hdr", "missing", why, fix),
        ]
    with sock:
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        except OSError as exc:
            vnet = Check("packet_vnet_hdr", "missing", f"refused: {exc.strerror}",
                         "a Linux kernel of 2.6.29 or later")  # fmt: skip
        else:
            kept = "frames keep their offload metadata (checksums, GSO) through the engine"
            vnet = Check("packet_vnet_hdr", "ok", kept)
    use = "the engine reads and sends frames with it"
    return [Check("af_packet", "ok", f"raw AF_PACKET socket opens: {use}"), vnet]


def tool_check() -> Check:
    absent = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if absent:
        return Check("iproute2", "missing", f"not on PATH: {', '.join(absent)} (`ns`, `lab`)",
                     "apt-get install iproute2")  # fmt: skip
    return Check("iproute2", "ok", "ip and tc on PATH (`ns` and `lab` run them)")


#: At most this many of the interfaces that do exist are named in a missing one's fix.
NAMES_SHOWN = 8


def interfaces_here() -> str:
    """The interfaces of this process's network namespace (if_nameindex asks the kernel, so
    it holds inside `ip netns exec` as well), at most NAMES_SHOWN of them."""
    names = [name for _, name in socket.if_nameindex()]
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return ", ".join(names[:NAMES_SHOWN]) + more


def interface_checks(names: list[str], rerun: str = "linkshaper doctor") -> list[Check]:
    """Each interface named: there (and up), and its offloads with what they change."""
    checks = []
    for name in names:
        state = interface_state(name)
        if state == "missing":
            here = interfaces_here()
            detail = f"no interface {name} in this network namespace (here: {here})"
            fix = (f"name one that is here ({here}), or run doctor in the namespace that "
                   f"holds {name}: ip netns exec NS {rerun}")  # fmt: skip
            checks.append(Check(f"interface.{name}", "missing", detail, fix))
            continue
        if state == "down":
            down = f"{name} is down: the engine brings it up when it starts"
            checks.append(Check(f"interface.{name}", "warn", down, f"ip link set {name} up"))
        else:
            checks.append(Check(f"interface.{name}", "ok", f"{name} is up"))
        checks.append(offload_check(name))
    return checks


#: What each offload does when it is off, for an interface the engine reads and sends on.
OFF_MEANS = {
    "gro": "arriving packets are not merged (on a NIC the engine handles every wire packet "
    "itself; a veth still passes its peer's super-frames whole)",
    "tso": "TCP sent out of it is cut into wire packets in software",
    "gso": "super-frames sent out of it are cut into wire packets in software",
    "tx": "outgoing checksums are computed in software (and TSO is off with it)",
    "rx": "incoming checksums are checked in software",
}
ON_MEANS = (
    "the engine forwards super-frames of up to 64 KiB whole (PACKET_VNET_HDR) and cuts them "
    "into wire packets only where loss, rate or a queue act"
)


def offload_check(name: str) -> Check:
    """Which offloads are on, what the ones off change, and a warning where that costs
    throughput (shaping is as correct either way: it acts per wire packet)."""
    try:
        found, kind = offloads(name), driver(name)
    except OSError as exc:
        return Check(f"offloads.{name}", "warn", f"cannot read them: {exc.strerror}")
    on = [feature for feature, state in found.items() if state]
    off = [feature for feature, state in found.items() if not state]
    said = f"{', '.join(on) or 'none'} on"
    if not off:
        return Check(f"offloads.{name}", "ok", f"{said}: {ON_MEANS}")
    effects = "; ".join(f"{feature} off: {OFF_MEANS[feature]}" for feature in off)
    costly = [f for f in off if f != "gro" or kind != "veth"]
    return Check(
        f"offloads.{name}",
        "warn" if costly else "ok",
        f"{said} ({kind or 'driver unknown'}); {effects}",
        f"ethtool -K {name} {' '.join(f'{feature} on' for feature in costly)}" if costly else None,
    )


def module_unloadable(module: str, modules: Path = Path("/lib/modules")) -> str | None:
    """Why `module` cannot be loaded on this machine (no modprobe, no modules of the running
    kernel, no file of it among them), or None when `modprobe module` can load it."""
    release = os.uname().release
    tree = modules / release
    if shutil.which("modprobe") is None:
        return "no modprobe here"
    if not tree.is_dir():
        return f"no {tree} (a container, or a kernel without modules)"
    dep = tree / "modules.dep"
    listed = dep.is_file() and f"/{module}.ko" in dep.read_text(errors="replace")
    if not listed and not any(tree.glob(f"kernel/net/sched/{module}.ko*")):
        return f"no {module} module in {tree}"
    return None


def _module_fix(name: str) -> tuple[str, str]:
    """What is said of a qdisc or action the kernel refused, and its fix: `modprobe` only
    where it can load the module; else the kernel lacks it, and the engine needs none."""
    module = ("sch_" if name.startswith("qdisc_") else "act_") + name.split("_", 1)[1]
    why = module_unloadable(module)
    engine = "--backend engine (on `ns add`: the engine needs no qdisc)"
    if why is None:
        fix = f"modprobe {module}"
        return "", f"{engine}, or {fix}" if name == "qdisc_netem" else fix
    return f"; this kernel lacks {module} and it cannot be loaded here ({why})", engine


def kernel_checks(rerun: str = "linkshaper doctor") -> list[Check]:
    """The qdiscs and the action, tried for real (see tc_probe), each with what it is for."""
    if effective_capabilities() >> CAPABILITIES["SYS_ADMIN"][0] & 1 == 0:
        why = "not probed: a throwaway network namespace needs CAP_SYS_ADMIN"
        fix: str | None = _privilege_fix("SYS_ADMIN", rerun)
        return [Check(name, "warn", f"{why}; {KERNEL_USES[name]}", fix) for name in NAMES]
    try:
        results = probe()
    except OSError as exc:
        fix = None
        if "not permitted" in str(exc) or "denied" in str(exc):  # a veth needs NET_ADMIN
            fix = _privilege_fix("NET_ADMIN", rerun)
        return [Check(name, "warn", f"not probed: {exc}; {KERNEL_USES[name]}", fix)
                for name in NAMES]  # fmt: skip
    checks = []
    for name, refusal in results.items():
        if refusal is None:
            checks.append(Check(name, "ok", f"this kernel takes it: {KERNEL_USES[name]}"))
            continue
        lacks, fix = _module_fix(name)
        detail = f"refused ({refusal}){lacks}: {KERNEL_USES[name]}"
        checks.append(Check(name, "missing", detail, fix))
    return checks
