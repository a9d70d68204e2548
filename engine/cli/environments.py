"""The environments an engine runs in, from the command line: `ns` (shaped network
namespaces, tc or engine backend) and `lab` (the client/box/server lab and its demo)."""

from __future__ import annotations

import argparse
import subprocess
from typing import TYPE_CHECKING

from engine.cli.common import USAGE_EXIT, command_after_dashes, fail
from engine.kernel.python_path import user_environment
from engine.lab.lab import ROLES, Lab
from engine.model.units import format_rate
from engine.protocol.control import finite_float

if TYPE_CHECKING:
    from engine.cli.common import SubParsers

LAB_ACTIONS = {
    "up": "create the lab's namespaces",
    "down": "remove them",
    "status": "show them",
    "exec": "run a command in one: exec NS -- CMD",
    "demo": "lab, engine and iperf3 traffic, with live counters",
}


def add_parsers(sub: SubParsers) -> None:
    _add_ns_parser(sub)
    _add_lab_parser(sub)


def _add_ns_parser(sub: SubParsers) -> None:
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


def _add_lab_parser(sub: SubParsers) -> None:
    lab = sub.add_parser("lab", help="a client/box/server namespace lab")
    lab_sub = lab.add_subparsers(dest="action", required=True)
    for action, text in LAB_ACTIONS.items():
        p = lab_sub.add_parser(action, help=text)
        p.add_argument("--prefix", default="ls", help="namespace name prefix (default ls)")
        p.set_defaults(func=cmd_lab)
        if action == "up":
            p.add_argument("--offloads-off", action="store_true", help="veth offloads off")
        if action == "demo":
            p.add_argument("--seconds", type=finite_float, default=30.0, help="demo length")
        if action == "exec":
            p.add_argument("ns", help=f"one of {', '.join(ROLES)}")
            p.add_argument("command", nargs=argparse.REMAINDER)


def cmd_ns(args: argparse.Namespace) -> int:
    from engine.namespaces import netns
    from engine.namespaces.namespace import Namespace, all_namespaces, load_config, parse_shaping

    if args.action == "add":
        config = load_config(args.config)
        updates = {k: v for k, v in (("parent", args.parent), ("pool", args.pool),
                                     ("qdisc", args.qdisc)) if v is not None}  # fmt: skip
        if updates:
            config = config.model_copy(update=updates)
        shaping = parse_shaping(args.rate, args.ingress_rate, args.egress_rate,
                                args.latency, args.jitter, args.loss, config)  # fmt: skip
        ns = netns.add(args.name, shaping, config, args.backend, args.http, start=not args.no_start)
        print(netns.describe(ns))
    elif args.action == "list":
        for ns in all_namespaces():
            s = ns.shaping
            down = format_rate(s.ingress_rate) if s.ingress_rate else "unlimited"
            up = format_rate(s.egress_rate) if s.egress_rate else "unlimited"
            print(f"{ns.name:16} {ns.backend:6} {ns.ns_ip:15} down {down:>12}  up {up:>12}")
    elif args.action == "show":
        print(netns.describe(Namespace.load(args.name)))
    elif args.action == "exec":
        command = command_after_dashes(list(args.command))
        if not command:
            return fail("usage: linkshaper ns exec NAME -- CMD...", USAGE_EXIT)
        Namespace.load(args.name)
        return subprocess.call(["ip", "netns", "exec", args.name, *command], env=user_environment())
    elif args.action == "del":
        targets = all_namespaces() if args.all else [Namespace.load(n) for n in args.names]
        if not targets and not args.all:
            return fail("usage: linkshaper ns del NAME... | --all", USAGE_EXIT)
        for ns in targets:
            netns.remove(ns)
            print(f"deleted {ns.name}")
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
        command = command_after_dashes(list(args.command))
        if not command:
            return fail("usage: linkshaper lab exec NS -- CMD...", USAGE_EXIT)
        role = args.ns.removeprefix(f"{args.prefix}-")
        return subprocess.call(lab.in_ns(role, *command), env=user_environment())
    elif args.action == "demo":
        from engine.lab.demo import run_demo

        return run_demo(lab, args.seconds)
    return 0
