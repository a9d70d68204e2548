"""`linkshaper doctor`: what this machine and this process can do for the command line given,
one check a line, each failing one with its fix; exit 1 when something it needs is missing."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import TYPE_CHECKING

from engine.doctor.diagnosis import diagnose
from engine.doctor.report import COMMANDS, as_json, as_text, exit_code
from engine.model.interface_names import check_interface_name
from engine.model.version import __version__
from engine.protocol.control import DEFAULT_CONTROL_PATH

if TYPE_CHECKING:
    from engine.cli.common import SubParsers


def add_parsers(sub: SubParsers) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="what this machine and this process can do, and the fix for what they cannot",
    )
    doctor.add_argument(
        "interfaces", nargs="*", metavar="OUTER INNER", help="interfaces to check (needed)"
    )
    doctor.add_argument(
        "--interfaces", dest="more_interfaces", metavar="A,B", default="",
        help="more interfaces, comma-separated",
    )  # fmt: skip
    doctor.add_argument(
        "--for", dest="purpose", choices=tuple(COMMANDS), default="run",
        help="whose needs decide the exit code: run (the engine, default), ns (ns add), "
        "ns-tc (ns add --backend tc), client (get, set, stats, tui)",
    )  # fmt: skip
    doctor.add_argument(
        "--control", metavar="PATH",
        help=f"the engine's control socket (default {DEFAULT_CONTROL_PATH}; needed if given)",
    )  # fmt: skip
    doctor.add_argument("--http", metavar="URL", help="an HTTP API to reach (needed if given)")
    doctor.add_argument(
        "--token", metavar="TOKEN",
        help="the API's token (default: $LINKSHAPER_HTTP_TOKEN)",
    )  # fmt: skip
    doctor.add_argument("--json", action="store_true", help="one JSON object")
    doctor.set_defaults(func=cmd_doctor)


def rerun() -> str:
    """This command line as the user gave it (`linkshaper` and its arguments), for the fixes
    that repeat it: under sudo, or in another network namespace."""
    return shlex.join(["linkshaper", *sys.argv[1:]])


def cmd_doctor(args: argparse.Namespace) -> int:
    token = None
    if args.http is not None:  # the web server's modules only when an API is to be reached
        from engine.web.server import resolve_token

        token = resolve_token(args.token)
    interfaces = [
        *(check_interface_name(name, "OUTER INNER") for name in args.interfaces),
        *(
            check_interface_name(name, "--interfaces")
            for name in args.more_interfaces.split(",")
            if name
        ),
    ]
    checks = diagnose(
        args.purpose,
        interfaces,
        args.control or DEFAULT_CONTROL_PATH,
        args.control is not None,
        args.http,
        token,
        rerun(),
    )
    if args.json:
        print(json.dumps(as_json(checks, args.purpose, __version__)))
    else:
        print(as_text(checks, args.purpose, __version__))
    return exit_code(checks)
