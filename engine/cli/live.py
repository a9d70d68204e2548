"""The commands that talk to a running engine over its control socket: `get`, `set`, `flush`
and `stats`."""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from engine.cli.common import USAGE_EXIT, fail
from engine.model.rates import direction_rates
from engine.model.stats import DirectionStats
from engine.model.units import format_duration_ms, format_rate
from engine.protocol.client import ControlClient
from engine.protocol.control import add_control_option
from engine.protocol.messages import SpecChanged, StatsReport

if TYPE_CHECKING:
    from engine.cli.common import SubParsers


def add_parsers(sub: SubParsers) -> None:
    get = sub.add_parser("get", help="print the spec in force")
    add_control_option(get)
    get.set_defaults(func=cmd_get)

    set_ = sub.add_parser("set", help="change fields: egress.latency=50ms ...")
    add_control_option(set_)
    set_.add_argument("assignments", nargs="+", metavar="FIELD=VALUE")
    set_.add_argument("--print", action="store_true", help="print the resulting spec")
    set_.set_defaults(func=cmd_set)

    flush = sub.add_parser("flush", help="drop the packets links hold (queued and delayed)")
    add_control_option(flush)
    flush.add_argument("--direction", choices=("ingress", "egress"), help="default: both")
    flush.add_argument("--link", metavar="LABEL", help="one link: default or a flow's label")
    flush.set_defaults(func=cmd_flush)

    stats = sub.add_parser("stats", help="show live counters")
    add_control_option(stats)
    stats.add_argument("--once", action="store_true", help="one snapshot, then exit")
    stats.add_argument("--json", action="store_true", help="JSON lines")
    stats.add_argument("--interval", type=float, default=1.0, help="seconds between lines")
    stats.add_argument("--seconds", type=float, default=0.0, help="stop after this long")
    stats.set_defaults(func=cmd_stats)


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
            return fail(f"{assignment!r}: write FIELD=VALUE, e.g. egress.latency=50ms", USAGE_EXIT)
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
        f"queue={drops.queue_full} blocked={drops.blocked}"
        + (f" aqm={drops.aqm} ce={total.ecn_marked}" if drops.aqm or total.ecn_marked else "")
        + (f" outage={drops.outage}" if drops.outage else "")
        + "  "
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
