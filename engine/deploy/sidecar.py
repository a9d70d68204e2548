"""Sidecar mode: shape a container that runs any image, from a container beside it.

`docker run --network container:APP --cap-add NET_ADMIN --cap-add NET_RAW IMAGE sidecar`
joins APP's network namespace (as a Kubernetes pod's containers share one), takes over APP's
interface exactly as the image's entrypoint does (`takeover.take_over`), and runs the engine
with the HTTP API on port $LINKSHAPER_HTTP_PORT (80) of every address. The API is reached
through the interface it shapes (APP has no other), so its TCP port passes unshaped
(`run --unshaped-port`): a blocked link can still be unblocked.

What APP's interface was is written down first (STATE_PATH, in the sidecar's own file
system), and given back when the sidecar stops: its addresses, MAC and routes on it again,
the veth pair gone, so APP keeps working unshaped. A sidecar that was killed before it could
do that is undone by the next one to start (from STATE_PATH after `docker restart`, else from
what the veth pair still carries).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from engine.deploy.takeover import (
    APP_SIDE,
    CONTROL_PATH,
    INNER,
    PROFILES,
    SPEC_PATH,
    Address,
    SetupError,
    Stop,
    addresses,
    find_synthetic,
    global_ipv6,
    ip,
    raise_stop,
    routes_via,
    take_over,
)
from engine.kernel.processes import stop_process
from engine.kernel.python_path import seal_python_path
from engine.model.spec import SpecError, loads_spec
from engine.namespaces.commands import engine_command
from engine.protocol.client import wait_for_engine
from engine.protocol.control import ControlError

log = logging.getLogger("linkshaper")

STATE_PATH = "/run/linkshaper/sidecar-state.json"
DEFAULT_HTTP_PORT = 80


@dataclass
class Interface:
    """What the shaped interface was before the take-over, to give it back as it was."""

    ifname: str
    mac: str
    cidrs: list[str]
    inet6: list[str] = field(default_factory=list)
    routes: list[dict[str, str]] = field(default_factory=list)
    routes6: list[dict[str, str]] = field(default_factory=list)


def describe(synthetic: Address) -> Interface:
    outer = synthetic.ifname
    cidrs = [a.cidr for a in addresses() if a.ifname == outer]
    return Interface(
        outer, synthetic.mac, cidrs, global_ipv6(outer), routes_via(outer), routes_via(outer, 6)
    )


def _links() -> dict[str, dict[str, str]]:
    return {link["ifname"]: link for link in json.loads(ip("-j", "link", "show"))}


def left_over() -> Interface | None:
    """A take-over still in place (a sidecar before this one was killed): what it took, from
    the state file if there is one, else from the veth pair itself."""
    links = _links()
    if INNER not in links:
        return None
    try:
        with open(STATE_PATH) as handle:
            return Interface(**json.load(handle))
    except (OSError, ValueError, TypeError):
        pass
    alias = links[INNER].get("ifalias", "")
    outer = alias.removeprefix("linkshaper:")
    if not alias.startswith("linkshaper:") or outer not in links or APP_SIDE not in links:
        raise SetupError(f"{INNER} exists but was not made by linkshaper: remove it first")
    cidrs = [a.cidr for a in addresses() if a.ifname == APP_SIDE]
    return Interface(
        outer,
        links[APP_SIDE].get("address", ""),
        cidrs,
        global_ipv6(APP_SIDE),
        routes_via(APP_SIDE),
        routes_via(APP_SIDE, 6),
    )


def give_back(interface: Interface) -> None:
    """Undo the take-over: the veth pair goes (and with it the addresses and routes on its
    inner end); the interface gets its MAC, ARP, IPv6 link-local, addresses and routes back."""
    if INNER in _links():
        ip("link", "del", INNER)
    outer = interface.ifname
    ip("link", "set", outer, "down")
    ip("link", "set", outer, "address", interface.mac)
    ip("link", "set", outer, "arp", "on")
    ip("link", "set", outer, "addrgenmode", "eui64")
    ip("link", "set", outer, "up")
    for cidr in interface.cidrs:
        ip("addr", "replace", cidr, "dev", outer)
    for cidr in interface.inet6:
        ip("-6", "addr", "replace", cidr, "dev", outer, "nodad")
    for route in interface.routes:
        ip("route", "replace", route["dst"], "via", route["gateway"], "dev", outer)
    for route in interface.routes6:
        ip("-6", "route", "replace", route["dst"], "via", route["gateway"], "dev", outer)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(STATE_PATH)
    log.info("gave %s back to the application, unshaped", outer)


def find_interface(network: str | None) -> Address:
    """The interface on $SYNTHETIC_NETWORK, else the only one with an IPv4 address."""
    found = addresses()
    if network:
        return find_synthetic(network, found)
    if len(found) == 1:
        return found[0]
    names = ", ".join(a.ifname for a in found) or "none"
    raise SetupError(
        f"SYNTHETIC_NETWORK: not set, and not one interface with an IPv4 address ({names})"
    )


def http_port() -> int:
    text = os.environ.get("LINKSHAPER_HTTP_PORT", str(DEFAULT_HTTP_PORT))
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise SetupError(f"LINKSHAPER_HTTP_PORT: a port is 1..65535, not {text!r}")
    return int(text)


def realtime_option() -> list[str]:
    """`--realtime` for the engine when $LINKSHAPER_REALTIME is 1 (the container needs
    --cap-add SYS_NICE for it to take: else the engine says so once and runs without)."""
    text = os.environ.get("LINKSHAPER_REALTIME", "")
    if text not in ("", "0", "1"):
        raise SetupError(f"LINKSHAPER_REALTIME: 1 or 0, not {text!r}")
    return ["--realtime"] if text == "1" else []


def fast_path_option() -> list[str]:
    """`--no-fast-path` for the engine when $LINKSHAPER_FAST_PATH is 0 (default 1: tc forwards
    a transparent direction; the container has the NET_ADMIN that needs)."""
    text = os.environ.get("LINKSHAPER_FAST_PATH", "")
    if text not in ("", "0", "1"):
        raise SetupError(f"LINKSHAPER_FAST_PATH: 1 or 0, not {text!r}")
    return ["--no-fast-path"] if text == "0" else []


def first_spec(path: str) -> None:
    """Write $LINKSHAPER_SPEC_JSON (default: pass-through) to the spec file if there is none
    yet: a restarted sidecar keeps the changes made since (the file), a new one starts from
    the variable."""
    if os.path.exists(path):
        return
    text = os.environ.get("LINKSHAPER_SPEC_JSON") or "{}"  # none given: pass-through
    try:
        loads_spec(text)
    except SpecError as exc:
        raise SetupError(f"LINKSHAPER_SPEC_JSON: {exc}") from None
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def main(argv: list[str] | None = None) -> int:
    """Take over, shape until stopped, give back; 1 with one line if a step fails."""
    seal_python_path()  # the engine it starts never imports from the working directory
    logging.basicConfig(level=logging.INFO, format="linkshaper: %(message)s", stream=sys.stderr)
    signal.signal(signal.SIGTERM, raise_stop)
    signal.signal(signal.SIGINT, raise_stop)
    if argv:
        log.error("sidecar takes no arguments (got %s); settings are environment variables",
                  " ".join(argv))  # fmt: skip
        return 2
    engine: subprocess.Popen[bytes] | None = None
    taken: Interface | None = None
    code = 0
    try:
        leftover = left_over()
        if leftover is not None:
            log.info("an earlier sidecar left %s taken over: giving it back first",
                     leftover.ifname)  # fmt: skip
            give_back(leftover)
        port = http_port()
        spec = os.environ.get("LINKSHAPER_SPEC", SPEC_PATH)
        first_spec(spec)
        synthetic = find_interface(os.environ.get("SYNTHETIC_NETWORK"))
        taken = describe(synthetic)
        os.makedirs(os.path.dirname(STATE_PATH), exist_ok=True)
        with open(STATE_PATH, "w") as handle:
            json.dump(asdict(taken), handle)
        keep = os.environ.get("LINKSHAPER_KEEP_DEFAULT_ROUTE", "") not in ("", "0")
        take_over(synthetic, keep_default_route=keep)
        engine = subprocess.Popen(engine_command(
            synthetic.ifname, INNER, spec, CONTROL_PATH, "--http", f"0.0.0.0:{port}",
            "--unshaped-port", str(port), *realtime_option(), *fast_path_option(),
            profiles=PROFILES,
        ))  # fmt: skip
        try:
            wait_for_engine(CONTROL_PATH, 15.0, alive=lambda: engine is not None
                            and engine.poll() is None)  # fmt: skip
        except ControlError as exc:
            raise SetupError(str(exc)) from None
        log.info("shaping %s; the API on port %d (unshaped); docker stop gives it back",
                 synthetic.ifname, port)  # fmt: skip
        code = engine.wait()
    except SetupError as exc:
        log.error("sidecar setup failed: %s", exc)
        code = 1
    except Stop:
        code = 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if engine is not None:
            stop_process(engine)
        if taken is not None:
            try:
                give_back(taken)
            except SetupError as exc:
                log.error("could not give the interface back: %s", exc)
                code = code or 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
