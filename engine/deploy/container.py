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
import logging
import os
import signal
import subprocess
import sys

from engine.deploy import sidecar
from engine.deploy.takeover import (
    CONTROL_PATH,
    INNER,
    PROFILES,
    SPEC_PATH,
    Address,
    SetupError,
    Stop,
    addresses,
    find_synthetic,
    raise_stop,
    take_over,
)
from engine.kernel.processes import stop_process
from engine.kernel.python_path import seal_python_path, user_environment
from engine.namespaces.commands import engine_command
from engine.protocol.client import wait_for_engine
from engine.protocol.control import ControlError

log = logging.getLogger("linkshaper")

HTTP_PORT = 80


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


USAGE = """\
usage: IMAGE [COMMAND...] | IMAGE sidecar ...   (the container's entrypoint)

Takes the container's network interface over (its addresses, MAC and routes move to a veth
pair the engine shapes), then runs COMMAND, $ENTRY or /opt/bin/entry. Run it only as a
container's entrypoint: on a host it would take the host's interface over.
"""


def main(argv: list[str] | None = None) -> int:
    seal_python_path()  # the engine it starts never imports from the working directory
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"]):  # asked what it does: never take anything over
        sys.stdout.write(USAGE)
        return 0
    if args[:1] == ["sidecar"]:  # `docker run --network container:APP ... IMAGE sidecar`
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
        listen += sidecar.realtime_option() + sidecar.fast_path_option()
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
                app = subprocess.Popen(command, env=user_environment())
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
