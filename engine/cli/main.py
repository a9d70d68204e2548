"""`linkshaper`: the command line. `run` keeps the seed's shape: OUTER INNER SPECPATH."""

from __future__ import annotations

import argparse
import contextlib
import gc
import ipaddress
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from engine.environments.lab import ROLES, Lab
from engine.model.errors import LinkshaperError
from engine.model.rates import direction_rates
from engine.model.spec import EXAMPLE_SPEC, PASS_THROUGH, SpecError, read_spec
from engine.model.stats import DirectionStats
from engine.model.trace import TraceError, check_traces
from engine.model.units import format_duration_ms, format_rate
from engine.protocol.client import ControlClient
from engine.protocol.control import DEFAULT_CONTROL_PATH, ControlError, socket_in_use
from engine.protocol.messages import SpecChanged, StatsReport

log = logging.getLogger("linkshaper")

USAGE_EXIT = 2
TRACE_DIR_HELP = (
    "traces named over HTTP must be files in DIR (default: none can be; the spec file and "
    "the control socket may name any file)"
)


def _usage_text(prog: str) -> str:
    return (
        "Invalid number of arguments.\n"
        f"Usage: {prog} run <outer_ifname> <inner_ifname> [<specpath>] [--control PATH]\n"
        "Example config for <specpath>:\n"
        f"{EXAMPLE_SPEC.to_json()}\n"
    )


def _fail(message: str, code: int = 1) -> int:
    print(f"linkshaper: {message}", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from engine.daemon.supervisor import Supervisor

    if args.ns:
        from engine.daemon.hosted import enter_netns
        from engine.environments.netns import Namespace

        ns = Namespace.load(args.ns)
        if ns.engine_pid and _alive(ns.engine_pid):
            return _fail(f"--ns {ns.name}: its engine runs already (pid {ns.engine_pid})")
        if ns.backend == "tc":
            from engine.environments.netns import to_engine

            ns = to_engine(ns)  # its rates carry over into the engine's spec
            log.info("%s: tc rules removed; the engine shapes it from now on", ns.name)
        enter_netns(ns.name)
        spec_file = args.interfaces[0] if args.interfaces else str(ns.spec_path)
        args.interfaces = [ns.inside, ns.engine_inner, spec_file]
        if args.control is None:
            args.control = ns.control
        ns.engine_pid = os.getpid()  # so that `ns show`, `ns del` and a second `run` know it
        ns.save()
    if args.control is None:
        args.control = DEFAULT_CONTROL_PATH
    if socket_in_use(args.control):  # before any worker starts forwarding
        return _fail(f"another engine runs already on {args.control}")
    if len(args.interfaces) not in (2, 3):
        sys.stderr.write(_usage_text("linkshaper"))
        return USAGE_EXIT
    outer, inner, *rest = args.interfaces
    spec_path = rest[0] if rest else None
    spec = PASS_THROUGH
    if spec_path is not None:
        if not os.path.exists(spec_path):
            with open(spec_path, "w") as handle:
                handle.write(EXAMPLE_SPEC.to_json() + "\n")
            log.info("created %s with the example spec", spec_path)
        try:
            spec = read_spec(spec_path)
            check_traces(spec)
        except (SpecError, TraceError) as exc:
            return _fail(f"{spec_path}: {exc}")
    recorder = None
    if args.record:
        from engine.timelines.recorder import TimelineRecorder

        try:
            recorder = TimelineRecorder(args.record, stats=args.record_stats)
        except OSError as exc:
            return _fail(f"--record: {args.record}: {exc.strerror}")
    supervisor = Supervisor(
        outer, inner, spec, spec_path, args.control, recorder, poll=not args.no_poll
    )
    supervisor.install_signal_handlers()
    try:
        supervisor.start()
    except (OSError, ControlError, subprocess.CalledProcessError) as exc:
        supervisor.shutdown()
        return _fail(f"cannot start: {exc}")
    if args.http:
        from engine.web.api import HttpServer, create_http_app, parse_listen, resolve_token

        host, port = parse_listen(args.http)
        token = resolve_token(args.http_token)
        app = create_http_app(supervisor, token, args.trace_dir)
        server = HttpServer(app, host, port)
        try:
            server.start()
        except OSError as exc:
            supervisor.shutdown()
            return _fail(f"cannot start: {exc}")
        supervisor.on_shutdown.append(server.stop)
        _log_access(host, port, token)
    log.info("shaping %s (outer) <-> %s (inner); control at %s", outer, inner, args.control)
    supervisor.run()
    if args.ns:
        from engine.environments.netns import Namespace

        with contextlib.suppress(Exception):  # it may have been deleted meanwhile
            ns = Namespace.load(args.ns)
            ns.engine_pid = None
            ns.save()
    return 0


def _log_access(host: str, port: int, token: str | None) -> None:
    access = "changes need the token" if token else "no token: anyone who reaches it"
    log.info("HTTP API on http://%s:%d/ (%s)", host, port, access)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if token is None and not loopback:
        log.warning(
            "the HTTP API is open to every host that reaches %s:%d: anyone there can change "
            "the link (set --http-token or LINKSHAPER_HTTP_TOKEN)",
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
    from engine.web.api import (
        HttpServer,
        RemoteEngine,
        create_http_app,
        parse_listen,
        resolve_token,
    )

    control = args.control or DEFAULT_CONTROL_PATH
    if args.ns:
        from engine.environments.netns import Namespace

        control = Namespace.load(args.ns).control
    host, port = parse_listen(args.listen)
    token = resolve_token(args.token)
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


def cmd_ns(args: argparse.Namespace) -> int:
    from engine.environments import netns

    if args.action == "add":
        config = netns.load_config(args.config)
        updates = {k: v for k, v in (("parent", args.parent), ("pool", args.pool),
                                     ("qdisc", args.qdisc)) if v is not None}  # fmt: skip
        if updates:
            config = config.model_copy(update=updates)
        shaping = netns.parse_shaping(args.rate, args.ingress_rate, args.egress_rate,
                                      args.latency, args.jitter, args.loss, config)  # fmt: skip
        ns = netns.add(args.name, shaping, config, args.backend, args.http, start=not args.no_start)
        print(netns.describe(ns))
    elif args.action == "list":
        for ns in netns.all_namespaces():
            s = ns.shaping
            down = format_rate(s.ingress_rate) if s.ingress_rate else "unlimited"
            up = format_rate(s.egress_rate) if s.egress_rate else "unlimited"
            print(f"{ns.name:16} {ns.backend:6} {ns.ns_ip:15} down {down:>12}  up {up:>12}")
    elif args.action == "show":
        print(netns.describe(netns.Namespace.load(args.name)))
    elif args.action == "exec":
        command = list(args.command)
        if command and command[0] == "--":
            command = command[1:]
        if not command:
            return _fail("usage: linkshaper ns exec NAME -- CMD...", USAGE_EXIT)
        netns.Namespace.load(args.name)
        return subprocess.call(["ip", "netns", "exec", args.name, *command])
    elif args.action == "del":
        targets = (
            netns.all_namespaces() if args.all else [netns.Namespace.load(n) for n in args.names]
        )
        if not targets and not args.all:
            return _fail("usage: linkshaper ns del NAME... | --all", USAGE_EXIT)
        for ns in targets:
            netns.remove(ns)
            print(f"deleted {ns.name}")
    return 0


def _value(text: str) -> Any:
    """JSON where it parses (numbers, true, null, objects); otherwise the string, units and all."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cmd_get(args: argparse.Namespace) -> int:
    with ControlClient(args.control) as client:
        print(client.get_spec().to_json())
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    for assignment in args.assignments:
        path, sep, value = assignment.partition("=")
        if not sep or not path:
            return _fail(f"{assignment!r}: write FIELD=VALUE, e.g. egress.latency=50ms", 2)
        changes[path.strip()] = _value(value.strip())
    with ControlClient(args.control) as client:
        spec = client.patch(changes, source="cli")
    if args.print:
        print(spec.to_json())
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    with ControlClient(args.control) as client:
        print(client.flush(args.direction, args.link))
    return 0


def _stats_line(previous: DirectionStats | None, current: DirectionStats) -> str:
    rates = direction_rates(previous, current)
    total = current.total
    drops = total.drops
    return (
        f"{current.direction:7} in {format_rate(rates.bits_in):>13}  "
        f"out {format_rate(rates.bits_out):>13}  "
        f"pkts {total.packets_in}/{total.packets_out}  drops loss={drops.loss} "
        f"queue={drops.queue_full} blocked={drops.blocked}  "
        f"queue {total.queue_packets} pkts {format_duration_ms(total.queue_delay_ms)}"
        + (f"  NOT FORWARDING: {current.interface_problem}" if current.interface_problem else "")
    )


def cmd_stats(args: argparse.Namespace) -> int:
    with ControlClient(args.control) as client:
        if args.once:
            stats = client.stats()
            if args.json:
                print(stats.model_dump_json())
            else:
                for direction in (stats.ingress, stats.egress):
                    if direction is not None:
                        print(_stats_line(None, direction))
            return 0
        previous: dict[str, DirectionStats] = {}
        shown: dict[str, float] = {}
        deadline = time.monotonic() + args.seconds if args.seconds else None
        for message in client.subscribe():
            if deadline is not None and time.monotonic() > deadline:
                break
            if isinstance(message, SpecChanged):
                if args.json:
                    print(message.model_dump_json(), flush=True)
                continue
            assert isinstance(message, StatsReport)
            if args.json:
                print(message.model_dump_json(), flush=True)
                continue
            sample = message.stats
            if sample.at - shown.get(sample.direction, 0.0) >= args.interval:
                print(_stats_line(previous.get(sample.direction), sample), flush=True)
                previous[sample.direction] = sample
                shown[sample.direction] = sample.at
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    """Attach and write every applied change (and stats, with --stats) until Ctrl-C."""
    from engine.timelines.recorder import TimelineRecorder

    deadline = time.monotonic() + args.seconds if args.seconds else None
    with ControlClient(args.control) as client:
        recorder = TimelineRecorder(args.file, stats=args.stats)
        try:
            recorder.spec(client.get_spec(), "attached")
            log.info("recording to %s; Ctrl-C stops", args.file)
            for message in client.subscribe():
                if isinstance(message, SpecChanged):
                    recorder.spec(message.spec, message.source)
                elif isinstance(message, StatsReport):
                    recorder.stats(message.stats)
                if deadline is not None and time.monotonic() > deadline:
                    break
        finally:
            recorder.close()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Apply a timeline's steps on time (validated whole before the first is applied)."""
    from engine.timelines.replay import ReplayRunner
    from engine.timelines.timeline import read_timeline

    timeline = read_timeline(args.file)
    with ControlClient(args.control) as client:
        runner = ReplayRunner(
            timeline,
            lambda spec: client.set_spec(spec, source="replay"),
            client.get_spec(),
            speed=args.speed,
            loop=args.loop,
        )
        log.info(
            "replaying %s: %d steps over %.1f s%s",
            args.file, len(runner.steps), timeline.duration / args.speed,
            " (looping)" if args.loop else "",
        )  # fmt: skip
        gc.freeze()  # a full pass of the cyclic collector (15-20 ms) would make a step late
        runner.run()
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from engine.timelines.plot import plot_timeline
    from engine.timelines.timeline import read_timeline

    timeline = read_timeline(args.file)
    if not timeline.stats:
        log.warning("%s has no stats lines: only the configured values are drawn", args.file)
    plot_timeline(timeline, args.out, args.width, args.height, show=not args.quiet)
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    lab = Lab(args.prefix)
    if args.action == "up":
        lab.up(offloads=not args.offloads_off)
        print(lab.status())
    elif args.action == "down":
        lab.down()
    elif args.action == "status":
        print(lab.status())
    elif args.action == "exec":
        command = list(args.command)
        if command and command[0] == "--":
            command = command[1:]
        if not command:
            return _fail("usage: linkshaper lab exec NS -- CMD...", 2)
        role = args.ns.removeprefix(f"{args.prefix}-")
        return subprocess.call(lab.in_ns(role, *command))
    elif args.action == "demo":
        from engine.environments.demo import run_demo

        return run_demo(lab, args.seconds)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linkshaper", description="A userspace link shaper between two interfaces."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_control(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--control",
            default=DEFAULT_CONTROL_PATH,
            help=f"control socket (default {DEFAULT_CONTROL_PATH})",
        )
        return p

    run = sub.add_parser("run", help="shape between OUTER and INNER")
    run.add_argument(
        "--control", default=None, help=f"control socket (default {DEFAULT_CONTROL_PATH})"
    )
    run.add_argument("interfaces", nargs="*", metavar="OUTER INNER [SPEC]")
    run.add_argument("--ns", metavar="NAME", help="shape the link of a namespace (ns add)")
    run.add_argument("--record", metavar="FILE", help="write every applied change to FILE")
    run.add_argument("--record-stats", action="store_true", help="and stats samples too")
    run.add_argument("--http", metavar="HOST:PORT", help="serve the HTTP API (e.g. 0.0.0.0:80)")
    run.add_argument(
        "--no-poll",
        action="store_true",
        help="sleep instead of polling for sparse frames and before held packets are due: "
        "less CPU while traffic flows; crossings about 0.02 ms slower, releases less exact",
    )
    run.add_argument(
        "--http-token",
        metavar="TOKEN",
        help="changes over HTTP need this token (default: $LINKSHAPER_HTTP_TOKEN; none: open)",
    )
    run.add_argument("--trace-dir", metavar="DIR", help=TRACE_DIR_HELP)
    run.set_defaults(func=cmd_run)

    record = with_control(sub.add_parser("record", help="record a running engine's changes"))
    record.add_argument("file", metavar="FILE", help="timeline to write (JSON Lines)")
    record.add_argument("--stats", action="store_true", help="also record stats samples")
    record.add_argument("--seconds", type=float, default=0.0, help="stop after this long")
    record.set_defaults(func=cmd_record)

    replay = with_control(sub.add_parser("replay", help="apply a timeline's steps on time"))
    replay.add_argument("file", metavar="FILE", help="timeline (JSON Lines)")
    replay.add_argument("--loop", action="store_true", help="start again at the end")
    replay.add_argument("--speed", type=float, default=1.0, help="2 = twice as fast")
    replay.set_defaults(func=cmd_replay)

    get = with_control(sub.add_parser("get", help="print the spec in force"))
    get.set_defaults(func=cmd_get)

    set_ = with_control(sub.add_parser("set", help="change fields: egress.latency=50ms ..."))
    set_.add_argument("assignments", nargs="+", metavar="FIELD=VALUE")
    set_.add_argument("--print", action="store_true", help="print the resulting spec")
    set_.set_defaults(func=cmd_set)

    flush = with_control(
        sub.add_parser("flush", help="drop the packets links hold (queued and delayed)")
    )
    flush.add_argument("--direction", choices=("ingress", "egress"), help="default: both")
    flush.add_argument("--link", metavar="LABEL", help="one link: default or a flow's label")
    flush.set_defaults(func=cmd_flush)

    stats = with_control(sub.add_parser("stats", help="show live counters"))
    stats.add_argument("--once", action="store_true", help="one snapshot, then exit")
    stats.add_argument("--json", action="store_true", help="JSON lines")
    stats.add_argument("--interval", type=float, default=1.0, help="seconds between lines")
    stats.add_argument("--seconds", type=float, default=0.0, help="stop after this long")
    stats.set_defaults(func=cmd_stats)

    plot = sub.add_parser("plot", help="draw a recorded timeline in the terminal")
    plot.add_argument("file", metavar="FILE", help="timeline with stats lines")
    plot.add_argument("--out", metavar="PATH", help="also save it (.html keeps the colours)")
    plot.add_argument("--width", type=int, default=100)
    plot.add_argument("--height", type=int, default=36)
    plot.add_argument("--quiet", action="store_true", help="save only, do not draw")
    plot.set_defaults(func=cmd_plot)

    http = sub.add_parser("http", help="serve the HTTP API for a running engine")
    http.add_argument("--control", default=None, help="the engine's control socket")
    http.add_argument("--ns", metavar="NAME", help="the engine of this namespace")
    http.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    http.add_argument("--token", help="changes need it (default: $LINKSHAPER_HTTP_TOKEN)")
    http.add_argument("--trace-dir", metavar="DIR", help=TRACE_DIR_HELP)
    http.set_defaults(func=cmd_http)

    ns = sub.add_parser("ns", help="shaped network namespaces (tc or engine backend)")
    ns_sub = ns.add_subparsers(dest="action", required=True)
    add = ns_sub.add_parser("add", help="make a namespace with a shaped link")
    add.add_argument("name")
    add.add_argument("--rate", help="both directions (default from the config, 100mbit)")
    add.add_argument("--ingress-rate", help="download (into the namespace)")
    add.add_argument("--egress-rate", help="upload (out of the namespace)")
    add.add_argument("--latency", help="each way, e.g. 20ms (engine, or tc with netem)")
    add.add_argument("--jitter", help="e.g. 5ms (engine, or tc with netem)")
    add.add_argument("--loss", help="e.g. 1%% (engine, or tc with netem)")
    add.add_argument("--backend", choices=("tc", "engine"), help="default from the config: tc")
    add.add_argument("--qdisc", choices=("htb", "tbf"), help="tc backend's rate limiter")
    add.add_argument("--parent", help="parent network namespace (default: the root one)")
    add.add_argument("--pool", help="address pool, e.g. 198.18.64.0/18")
    add.add_argument("--http", metavar="HOST:PORT", help="engine backend: its HTTP API")
    add.add_argument(
        "--no-start", action="store_true", help="engine backend: leave it to `run --ns NAME`"
    )
    add.add_argument("--config", help="defaults (default /etc/linkshaper/namespaces.json)")
    ns_sub.add_parser("list", help="the namespaces made here")
    show = ns_sub.add_parser("show", help="rules in force and live counters")
    show.add_argument("name")
    exec_ = ns_sub.add_parser("exec", help="run a command inside: exec NAME -- CMD")
    exec_.add_argument("name")
    exec_.add_argument("command", nargs=argparse.REMAINDER)
    delete = ns_sub.add_parser("del", help="remove namespaces: del NAME... | --all")
    delete.add_argument("names", nargs="*")
    delete.add_argument("--all", action="store_true")
    ns.set_defaults(func=cmd_ns)

    lab = sub.add_parser("lab", help="a client/box/server namespace lab")
    lab_sub = lab.add_subparsers(dest="action", required=True)
    lab_actions = {
        "up": "create the lab's namespaces",
        "down": "remove them",
        "status": "show them",
        "exec": "run a command in one: exec NS -- CMD",
        "demo": "lab, engine and iperf3 traffic, with live counters",
    }
    for action, text in lab_actions.items():
        p = lab_sub.add_parser(action, help=text)
        p.add_argument("--prefix", default="ls", help="namespace name prefix (default ls)")
        p.set_defaults(func=cmd_lab)
        if action == "up":
            p.add_argument("--offloads-off", action="store_true", help="veth offloads off")
        if action == "demo":
            p.add_argument("--seconds", type=float, default=30.0, help="demo length")
        if action == "exec":
            p.add_argument("ns", help=f"one of {', '.join(ROLES)}")
            p.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="linkshaper: %(message)s", stream=sys.stderr)
    # Ctrl-C (SIGINT) stops any command, `record` and `replay` among them, also when it was
    # started with SIGINT ignored, as a script's background jobs are (and then Python leaves it
    # ignored): `kill -INT` is how such a job is stopped with its file closed whole.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except LinkshaperError as exc:
        code = _fail(str(exc))
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()
