"""The engine backend: a linkshaper engine inside the namespace forwards between `lspN` (outer)
and `lsiN`, whose peer `lsaN` carries the namespace's address. Every engine feature applies;
its control socket is /run/linkshaper/ns/NAME.sock (for `tui --ns NAME`, `linkshaper set`, and
`linkshaper http --ns NAME`).
"""

from __future__ import annotations

import subprocess

from engine.model.spec import UNLIMITED_RATE
from engine.model.units import format_duration_ms, format_rate
from engine.namespaces.commands import engine_command
from engine.namespaces.namespace import STATE_DIR, Namespace, NamespaceError, run
from engine.namespaces.tc import remove_tc


def add_engine(ns: Namespace, http: str | None, start: bool) -> None:
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
    remove_tc(ns)
    run("ip", "addr", "flush", "dev", ns.inside, netns=ns.name)
    ns.backend = "engine"
    add_engine(ns, None, start=False)
    ns.save()
    return ns


def engine_lines(ns: Namespace) -> list[str]:
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
