"""`linkshaper run` (the engine itself, in the seed's shape: OUTER INNER SPECPATH) and
`linkshaper http` (the HTTP API for an engine that runs already)."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import sys
from typing import TYPE_CHECKING

from engine.cli.common import fail, log
from engine.files.regular_files import NEW_FILE_MODE, create_new_file
from engine.files.spec_files import read_spec
from engine.files.trace_files import check_traces
from engine.model.errors import LinkshaperError
from engine.model.spec import EXAMPLE_SPEC, PASS_THROUGH, Spec, SpecError, seed_view
from engine.model.trace import TraceError
from engine.protocol.control import (
    DEFAULT_CONTROL_PATH,
    ControlError,
    add_control_option,
    socket_in_use,
)

if TYPE_CHECKING:
    from engine.cli.common import SubParsers
    from engine.daemon.supervisor import Supervisor

TRACE_DIR_HELP = (
    "traces named over HTTP must be files in DIR (default: none can be; the spec file and "
    "the control socket may name any file)"
)


#: `linkshaper http` started with (or just before) its engine waits this long for it to come
#: up (compose, systemd and scripts start both at once), then says it did not.
ENGINE_WAIT = 30.0

#: What the token is for, the same for `run --http-token` and `http --token`.
TOKEN_HELP = (
    "every HTTP request needs this token, reads as well as changes; only the page, /healthz "
    "and the API's description are open (default: $LINKSHAPER_HTTP_TOKEN; none: all open)"
)


def add_parsers(sub: SubParsers) -> None:
    run = sub.add_parser("run", help="shape between OUTER and INNER")
    add_control_option(run, by_namespace=True)
    run.add_argument(
        "interfaces", nargs="*", metavar="OUTER INNER [SPEC [INGRESS_PROFILE EGRESS_PROFILE]]"
    )
    run.add_argument("--ns", metavar="NAME", help="shape the link of a namespace (ns add)")
    run.add_argument("--record", metavar="FILE", help="write every applied change to FILE")
    run.add_argument("--record-stats", action="store_true", help="and stats samples too")
    run.add_argument(
        "--http",
        metavar="HOST:PORT",
        action="append",
        help="serve the HTTP API (e.g. 0.0.0.0:80); again for more addresses",
    )
    _add_timing_options(run)
    run.add_argument(
        "--fast-path",
        action="store_true",
        help="the default (accepted: it was opt-in for a while); --no-fast-path wins",
    )
    run.add_argument(
        "--no-fast-path",
        action="store_true",
        help="forward every frame in the engine even while a direction is transparent "
        "(default: tc's redirect forwards a transparent direction nobody captures, at the "
        "kernel's speed)",
    )
    run.add_argument(
        "--http-token",
        metavar="TOKEN",
        help=TOKEN_HELP,
    )
    run.add_argument("--trace-dir", metavar="DIR", help=TRACE_DIR_HELP)
    run.add_argument(
        "--unshaped-port",
        type=_port,
        metavar="PORT",
        help="TCP to and from this port of the inner side passes unshaped (an API served "
        "through the shaped interface, as the sidecar's, stays reachable at any loss or rate)",
    )
    run.add_argument(
        "--no-persist",
        action="store_true",
        help="leave SPEC as it is (default: every change applied is written to it, atomically)",
    )
    run.set_defaults(func=cmd_run)

    http = sub.add_parser("http", help="serve the HTTP API for a running engine")
    add_control_option(http, by_namespace=True, what="the engine's control socket")
    http.add_argument("--ns", metavar="NAME", help="the engine of this namespace")
    http.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    http.add_argument("--token", metavar="TOKEN", help=TOKEN_HELP)
    http.add_argument("--trace-dir", metavar="DIR", help=TRACE_DIR_HELP)
    http.set_defaults(func=cmd_http)


def _add_timing_options(run: argparse.ArgumentParser) -> None:
    """How the workers keep time: `--precise` (polling) or `--realtime` (SCHED_FIFO), not both."""
    timing = run.add_mutually_exclusive_group()
    timing.add_argument(
        "--precise",
        action="store_true",
        help="poll before held packets are due and for sparse frames: releases on time to a "
        "few µs and crossings about 0.02 ms quicker, for up to a core per direction while "
        "traffic flows (default: sleep; releases typically within 0.1 ms)",
    )
    timing.add_argument(
        "--realtime",
        action="store_true",
        help="run the workers at SCHED_FIFO (priority 10) so busy processes beside the engine "
        "do not delay its releases; needs CAP_SYS_NICE (docker: --cap-add SYS_NICE), else "
        "says so once and runs as without it (not with --precise: polling at a real-time "
        "priority would starve the machine)",
    )
    timing.add_argument(
        "--no-poll",
        action="store_true",
        help="the default now (sleep instead of polling); kept for older command lines",
    )


def _port(text: str) -> int:
    """A TCP port number, 1..65535 (argparse's error names the option)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, not {port}")
    return port


#: The seed's own exit code for a command line of the wrong length.
SEED_USAGE_EXIT = 1


def seed_usage(prog: str) -> str:
    """What the seed's engine prints on stdout for a wrong number of arguments: scripts read it
    (its setup takes the fifth field of the `Example config` line as the default spec), so the
    example is one line of JSON without spaces, in the seed's shape."""
    example = json.dumps(seed_view(EXAMPLE_SPEC), separators=(",", ":"))
    return (
        "Invalid number of arguments.\n"
        f"Usage: {prog} <outer_ifname> <inner_ifname> <specpath> <ingress_profile>"
        " <egress_profile>\n"
        f"Example config for <specpath>: {example}\n"
    )


def cmd_run(args: argparse.Namespace) -> int:
    from engine.daemon.config import EngineConfig
    from engine.daemon.supervisor import Supervisor
    from engine.web.server import raise_descriptor_limit

    raise_descriptor_limit()  # before anything opens: the HTTP cap keeps a reserve of the rest
    if args.ns:
        refused = _enter_namespace(args)
        if refused is not None:
            return refused
    if args.control is None:
        args.control = DEFAULT_CONTROL_PATH
    if socket_in_use(args.control):  # before any worker starts forwarding
        return fail(f"another engine runs already on {args.control}")
    if len(args.interfaces) not in (2, 3, 5):
        sys.stdout.write(seed_usage("linkshaper run"))
        return SEED_USAGE_EXIT
    outer, inner, *rest = args.interfaces
    spec_path = rest[0] if rest else None
    profiles = (rest[1], rest[2]) if len(rest) == 3 else None
    spec = PASS_THROUGH
    if spec_path is not None:
        try:
            spec = _first_spec(spec_path)
        except (SpecError, TraceError) as exc:
            return fail(f"{spec_path}: {exc}")
    # Refuses an interface name the kernel would cut short, before --record opens a file.
    config = EngineConfig(
        outer, inner, spec_path, args.control, precise=args.precise, realtime=args.realtime,
        fast_path=not args.no_fast_path, persist=not args.no_persist, profiles=profiles,
        unshaped_port=args.unshaped_port)  # fmt: skip
    recorder = None
    if args.record:
        from engine.timelines.recorder import TimelineRecorder

        try:
            recorder = TimelineRecorder(args.record, stats=args.record_stats)
        except OSError as exc:
            return fail(f"--record: {args.record}: {exc.strerror}")
    supervisor = Supervisor(config, spec, recorder)
    supervisor.install_signal_handlers()
    try:
        supervisor.start()
    except (OSError, ControlError) as exc:
        supervisor.shutdown()
        return fail(f"cannot start: {exc}")
    if args.http:
        refused = _serve_http(args.http, args, supervisor)
        if refused is not None:
            return refused
    log.info("shaping %s (outer) <-> %s (inner); control at %s", outer, inner, args.control)
    supervisor.run()
    if args.ns:
        from engine.namespaces.namespace import Namespace

        with contextlib.suppress(Exception):  # it may have been deleted meanwhile
            ns = Namespace.load(args.ns)
            ns.engine_pid = None
            ns.save()
    return 0


def _enter_namespace(args: argparse.Namespace) -> int | None:
    """`run --ns NAME`: move into the namespace and take its interfaces, spec and socket
    (a tc-shaped one is handed over to the engine first). An exit code if it cannot."""
    from engine.daemon.hosted import enter_netns
    from engine.namespaces.engine_backend import to_engine
    from engine.namespaces.namespace import Namespace

    ns = Namespace.load(args.ns)
    if ns.engine_pid and _alive(ns.engine_pid):
        return fail(f"--ns {ns.name}: its engine runs already (pid {ns.engine_pid})")
    if ns.backend == "tc":
        ns = to_engine(ns)  # its rates carry over into the engine's spec
        log.info("%s: tc rules removed; the engine shapes it from now on", ns.name)
    enter_netns(ns.name)
    spec_file = args.interfaces[0] if args.interfaces else str(ns.spec_path)
    args.interfaces = [ns.inside, ns.engine_inner, spec_file]
    if args.control is None:
        args.control = ns.control
    ns.engine_pid = os.getpid()  # so that `ns show`, `ns del` and a second `run` know it
    ns.save()
    return None


def _first_spec(spec_path: str) -> Spec:
    """The spec to start with; a missing file is made with the example spec, as the seed did."""
    if not os.path.lexists(spec_path):
        # Made, never opened: a link someone planted at the name meanwhile is not written
        # through (it is read below as any spec file, and refused if it is not one).
        with contextlib.suppress(FileExistsError):
            fd = create_new_file(spec_path, NEW_FILE_MODE)
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(seed_view(EXAMPLE_SPEC), indent=2) + "\n")
            log.info("created %s with the example spec", spec_path)
    spec = read_spec(spec_path)
    check_traces(spec)
    return spec


def _serve_http(listens: list[str], args: argparse.Namespace, supervisor: Supervisor) -> int | None:
    """`run --http LISTEN ...`: one API in this process, served on every address given, and
    stopped with the supervisor."""
    from engine.web.api import create_http_app
    from engine.web.server import HttpServer, connection_cap, parse_listen, resolve_token

    token = resolve_token(args.http_token)
    app = create_http_app(supervisor, token, args.trace_dir)
    try:
        addresses = [parse_listen(listen) for listen in listens]
    except LinkshaperError as exc:
        supervisor.shutdown()
        return fail(str(exc))
    cap = connection_cap(len(addresses))  # with the workers running: what is left of the limit
    for host, port in addresses:
        server = HttpServer(app, host, port, cap)
        try:
            server.start()
        except OSError as exc:
            supervisor.shutdown()
            return fail(f"cannot start: {exc}")
        supervisor.on_shutdown.append(server.stop)
        _log_access(host, port, token)
    return None


def _log_access(host: str, port: int, token: str | None) -> None:
    access = (
        "every request needs the token but the page, /healthz and the API's description"
        if token
        else "no token: anyone who reaches it"
    )
    log.info("HTTP API on http://%s:%d/ (%s)", host, port, access)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if token is None and not loopback:
        log.warning(
            "the HTTP API is open to every host that reaches %s:%d: anyone there can read and "
            "change the link (set --http-token or LINKSHAPER_HTTP_TOKEN)",
            host,
            port,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def cmd_http(args: argparse.Namespace) -> int:
    """The HTTP API for an engine that runs already (a namespace's, or any control socket)."""
    from engine.web.api import create_http_app
    from engine.web.remote_engine import RemoteEngine
    from engine.web.server import (
        HttpServer,
        parse_listen,
        raise_descriptor_limit,
        resolve_token,
    )

    raise_descriptor_limit()
    control = args.control or DEFAULT_CONTROL_PATH
    if args.ns:
        from engine.namespaces.namespace import Namespace

        control = Namespace.load(args.ns).control
    host, port = parse_listen(args.listen)
    token = resolve_token(args.token)
    from engine.protocol.client import wait_for_engine

    try:
        wait_for_engine(control, ENGINE_WAIT)
    except ControlError as exc:
        return fail(f"{exc} (waited {ENGINE_WAIT:.0f} s)")
    app = create_http_app(RemoteEngine(control), token, args.trace_dir)
    server = HttpServer(app, host, port)
    server.start()
    log.info("HTTP API for %s", control)
    _log_access(host, port, token)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        server.stop()
    return 0
