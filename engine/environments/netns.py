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
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.environments.commands import (
    engine_command,
    kill_namespace_processes,
    network_namespaces,
    run_command,
)
from engine.kernel.processes import stop_pid
from engine.model.errors import LinkshaperError
from engine.model.spec import UNLIMITED_RATE, Spec, SpecError, describe_validation_error
from engine.model.units import format_duration_ms, format_rate, parse_rate

STATE_DIR = Path(os.environ.get("LINKSHAPER_NS_STATE", "/run/linkshaper/ns"))
CONFIG_PATH = os.environ.get("LINKSHAPER_NS_CONFIG", "/etc/linkshaper/namespaces.json")


class NamespaceError(LinkshaperError, RuntimeError):
    """One line: what could not be done and why."""


class NsConfig(BaseModel):
    """Defaults for every new namespace (the seed gave each a reasonable limit)."""

    model_config = ConfigDict(extra="forbid")

    pool: str = "198.18.64.0/18"
    rate: int = 100_000_000
    backend: str = Field(default="tc", pattern="^(tc|engine)$")
    qdisc: str = Field(default="htb", pattern="^(htb|tbf)$")
    parent: str | None = None  # a network namespace name; None: the root namespace
    forward: bool = False  # turn on IPv4 forwarding in the parent (to reach beyond it)
    nat: bool = False  # masquerade the pool behind the parent's other addresses

    @field_validator("rate", mode="before")
    @classmethod
    def _units(cls, value: Any) -> Any:
        return parse_rate(value) if isinstance(value, str) else value

    @field_validator("pool")
    @classmethod
    def _pool(cls, value: str) -> str:
        network = ipaddress.ip_network(value, strict=True)
        if network.version != 4 or network.prefixlen > 30:
            raise ValueError("an IPv4 network of /30 or larger")
        return value


def load_config(path: str | None = None) -> NsConfig:
    path = path or CONFIG_PATH
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return NsConfig()
    except OSError as exc:
        raise NamespaceError(f"{path}: {exc.strerror}") from None
    try:
        return NsConfig.model_validate_json(text)
    except ValidationError as exc:
        raise NamespaceError(f"{path}: {describe_validation_error(exc)}") from None


@dataclass
class Shaping:
    """What the user asked for, per direction (download = ingress, upload = egress)."""

    ingress_rate: int | None = None
    egress_rate: int | None = None
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0

    @property
    def needs_netem(self) -> bool:
        return self.latency_ms > 0 or self.jitter_ms > 0 or self.loss > 0

    def spec(self) -> Spec:
        def link(rate: int | None) -> dict[str, Any]:
            return {
                "rate": rate if rate is not None else UNLIMITED_RATE,
                "latency": self.latency_ms,
                "jitter": self.jitter_ms,
                "loss": self.loss,
            }

        return Spec.model_validate(
            {"default_link": {"ingress": link(self.ingress_rate), "egress": link(self.egress_rate)}}
        )


@dataclass
class Namespace:
    name: str
    index: int
    backend: str
    parent: str | None
    parent_ip: str
    ns_ip: str
    prefix: int
    qdisc: str
    shaping: Shaping = field(default_factory=Shaping)
    engine_pid: int | None = None

    @property
    def outside(self) -> str:
        return f"lsv{self.index}"

    @property
    def inside(self) -> str:
        return f"lsp{self.index}"

    @property
    def engine_inner(self) -> str:
        return f"lsi{self.index}"

    @property
    def app_side(self) -> str:
        return f"lsa{self.index}"

    @property
    def control(self) -> str:
        return str(STATE_DIR / f"{self.name}.sock")

    @property
    def spec_path(self) -> Path:
        """The engine's spec file (written by `ns add` from the requested shaping)."""
        return STATE_DIR / f"{self.name}.spec.json"

    @property
    def state_path(self) -> Path:
        return STATE_DIR / f"{self.name}.json"

    def save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, name: str) -> Namespace:
        path = STATE_DIR / f"{name}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise NamespaceError(f"no namespace {name!r} made by linkshaper") from None
        data["shaping"] = Shaping(**data["shaping"])
        return cls(**data)


def all_namespaces() -> list[Namespace]:
    if not STATE_DIR.exists():
        return []
    return [Namespace.load(p.stem) for p in sorted(STATE_DIR.glob("*.json")) if "." not in p.stem]


# --- running commands --------------------------------------------------------------------


def run(
    *args: str, netns: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run_command(args, netns, check, NamespaceError)


def netem_available() -> bool:
    """Whether this kernel can add a netem qdisc, tried in a namespace of its own."""
    probe = f"lsprobe{os.getpid()}"
    try:
        run("ip", "netns", "add", probe)
        run("ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1", netns=probe)
        done = run("tc", "qdisc", "add", "dev", "d0", "root", "netem", "delay", "1ms",
                   netns=probe, check=False)  # fmt: skip
        return done.returncode == 0
    finally:
        run("ip", "netns", "del", probe, check=False)


# --- making and removing ----------------------------------------------------------------


def _free_index(config: NsConfig) -> int:
    used = {ns.index for ns in all_namespaces()}
    capacity = ipaddress.ip_network(config.pool).num_addresses // 4
    for index in range(capacity):
        if index not in used:
            return index
    raise NamespaceError(f"the pool {config.pool} is full ({capacity} namespaces)")


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
            _add_tc(ns)
        else:
            _add_engine(ns, http, start)
        ns.save()
        return ns
    except BaseException:
        remove(ns)
        raise


def _add_tc(ns: Namespace) -> None:
    run("ip", "addr", "add", f"{ns.ns_ip}/30", "dev", ns.inside, netns=ns.name)
    run("ip", "link", "set", ns.inside, "up", netns=ns.name)
    run("ip", "route", "add", "default", "via", ns.parent_ip, netns=ns.name)
    s = ns.shaping
    _tc_rate(ns.outside, s.ingress_rate, ns.qdisc, ns.parent)  # download: out of the parent
    _tc_rate(ns.inside, s.egress_rate, ns.qdisc, ns.name)  # upload: out of the namespace
    _tc_netem(ns.outside, s, s.ingress_rate is not None, ns.parent)
    _tc_netem(ns.inside, s, s.egress_rate is not None, ns.name)


def _add_engine(ns: Namespace, http: str | None, start: bool) -> None:
    for sysctl in (f"net.ipv6.conf.{ns.inside}.disable_ipv6=1",):
        run("sysctl", "-qw", sysctl, netns=ns.name)
    run("ip", "link", "add", ns.engine_inner, "type", "veth", "peer", "name", ns.app_side,
        netns=ns.name)  # fmt: skip
    for device in (ns.inside, ns.engine_inner, ns.app_side):
        run("ip", "link", "set", device, "up", netns=ns.name)
    run("ip", "addr", "add", f"{ns.ns_ip}/30", "dev", ns.app_side, netns=ns.name)
    run("ip", "route", "add", "default", "via", ns.parent_ip, netns=ns.name)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    spec_path = ns.spec_path
    spec_path.write_text(ns.shaping.spec().to_json())
    if not start:
        return
    log = open(STATE_DIR / f"{ns.name}.log", "ab")  # noqa: SIM115 - handed to the engine
    extra = ("--http", http) if http else ()
    run_it = engine_command(ns.inside, ns.engine_inner, str(spec_path), ns.control, *extra)
    command = ["ip", "netns", "exec", ns.name, *run_it]
    with log:
        engine = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    ns.engine_pid = engine.pid
    ns.save()
    from engine.protocol.client import wait_for_engine
    from engine.protocol.control import ControlError

    try:  # both workers forwarding, not just the socket there
        wait_for_engine(ns.control, 15.0, alive=lambda: engine.poll() is None)
    except ControlError as exc:
        raise NamespaceError(f"the engine for {ns.name}: {exc}; see its .log") from None


def to_engine(ns: Namespace) -> Namespace:
    """Hand a tc-shaped namespace to the engine (for `run --ns`, so that the TUI can tune any
    namespace): its tc rules go, the address moves to the engine's inner side, and the engine
    starts from the rates the tc rules had."""
    if ns.backend == "engine":
        return ns
    for device, where in ((ns.outside, ns.parent), (ns.inside, ns.name)):
        run("tc", "qdisc", "del", "dev", device, "root", netns=where, check=False)
    run("ip", "addr", "flush", "dev", ns.inside, netns=ns.name)
    ns.backend = "engine"
    _add_engine(ns, None, start=False)
    ns.save()
    return ns


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


# --- looking at them ---------------------------------------------------------------------


def _tc_lines(device: str, netns: str | None) -> list[str]:
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
        lines += [f"    {line}" for line in _tc_lines(ns.outside, ns.parent)]
        lines.append(f"  upload (egress on {ns.inside}, inside):")
        lines += [f"    {line}" for line in _tc_lines(ns.inside, ns.name)]
    else:
        lines.append(f"  engine pid {ns.engine_pid}, control {ns.control}")
        lines += [f"    {line}" for line in _engine_lines(ns)]
    return "\n".join(lines)


def _engine_lines(ns: Namespace) -> list[str]:
    from engine.protocol.client import ControlClient
    from engine.protocol.control import ControlError

    try:
        with ControlClient(ns.control) as client:
            spec, stats = client.get_spec(), client.stats()
    except ControlError as exc:
        return [f"engine not reachable: {exc}"]
    lines = []
    for direction, sample in (("ingress", stats.ingress), ("egress", stats.egress)):
        link = spec.link(direction)  # type: ignore[arg-type]
        rate = format_rate(link.rate) if link.rate < UNLIMITED_RATE else "unlimited"
        counters = ""
        if sample is not None:
            t = sample.total
            counters = (f"  sent {t.bytes_out} bytes {t.packets_out} pkt (dropped "
                        f"{t.drops.total}, queue {t.queue_packets})")  # fmt: skip
        lines.append(
            f"{direction}: rate {rate} latency {format_duration_ms(link.latency)}{counters}"
        )
    return lines


def parse_shaping(
    rate: str | None,
    ingress_rate: str | None,
    egress_rate: str | None,
    latency: str | None,
    jitter: str | None,
    loss: str | None,
    config: NsConfig,
) -> Shaping:
    """Command-line values (with units) on top of the config's default rate."""
    from engine.model.units import UnitError, parse_duration_ms, parse_ratio

    def rate_of(text: str | None, fallback: int | None) -> int | None:
        if text is None:
            return fallback
        if text.strip().lower() in ("unlimited", "none", "0"):
            return None
        return parse_rate(text)

    try:
        both = rate_of(rate, config.rate)
        return Shaping(
            ingress_rate=rate_of(ingress_rate, both),
            egress_rate=rate_of(egress_rate, both),
            latency_ms=parse_duration_ms(latency) if latency else 0.0,
            jitter_ms=parse_duration_ms(jitter) if jitter else 0.0,
            loss=parse_ratio(loss) if loss else 0.0,
        )
    except (UnitError, SpecError) as exc:
        raise NamespaceError(str(exc)) from None
