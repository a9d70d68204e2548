"""The commands that talk to a running engine over its control socket: `get`, `set`, `flush`
and `stats`."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import TYPE_CHECKING, Any

from engine.cli.common import USAGE_EXIT, fail
from engine.model.rates import direction_rates
from engine.model.spec import seed_view
from engine.model.stats import DirectionStats, LinkStats
from engine.model.units import format_duration_ms, format_rate
from engine.protocol.client import ControlClient
from engine.protocol.control import add_control_option, finite_float
from engine.protocol.messages import SpecChanged, WorkerRestarted

if TYPE_CHECKING:
    from engine.cli.common import SubParsers


def add_parsers(sub: SubParsers) -> None:
    get = sub.add_parser("get", help="print the spec in force")
    add_control_option(get)
    get.add_argument("--json", action="store_true",
                     help="one line, as GET /qos answers it (the seed's shape)")  # fmt: skip
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
    stats.add_argument("--once", action="store_true",
                       help="one snapshot (rates over one --interval), then exit")  # fmt: skip
    stats.add_argument("--json", action="store_true",
                       help="one JSON object a line, as GET /stats and /stats/stream")  # fmt: skip
    stats.add_argument("--interval", type=finite_float, default=None,
                       help=f"seconds between lines (default {INTERVAL}; with --json: every "
                       "report)")  # fmt: skip
    stats.add_argument("--seconds", type=finite_float, default=0.0, help="stop after this long")
    stats.set_defaults(func=cmd_stats)


#: Seconds between text lines of `stats`, and the span `stats --once` takes its rates over.
INTERVAL = 1.0
#: The longest `--interval`: `--once` waits that long.
MAX_INTERVAL = 3600.0
#: A live `stats` that hears nothing for this long (or 3 intervals) says the engine is silent.
STATS_SILENCE = 10.0


def http_json(data: Any) -> str:
    """JSON as the HTTP API writes its answers (starlette's JSONResponse): one line, no
    spaces, UTF-8 kept, so `get --json` is byte for byte the body of `GET /qos`."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _value(text: str) -> Any:
    """JSON where it parses (numbers, true, null, objects); otherwise the string, units and all."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cmd_get(args: argparse.Namespace) -> int:
    """Plain: the whole model, indented (what scripts and the seed's files have read since
    the start); `--json`: the HTTP API's answer to `GET /qos`."""
    with ControlClient(args.control) as client:
        spec = client.get_spec()
    print(http_json(seed_view(spec)) if args.json else spec.to_json())
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


def _connections(total: LinkStats) -> str:
    """The connections a link with a connection fault tracks, and those its full table could
    not take (they pass unharmed): said only where a fault keeps a table."""
    if not total.connections and not total.connections_untracked:
        return ""
    untracked = total.connections_untracked
    return f"  conns {total.connections}" + (f" ({untracked} untracked)" if untracked else "")


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
        + (f" blackholed={drops.blackholed}" if drops.blackholed else "")
        + (f" held={total.held}" if total.held else "")
        + (f" reset={drops.reset}" if drops.reset else "")
        + "  "
        f"queue {total.queue_packets} pkts {format_duration_ms(total.queue_delay_ms)}"
        + _connections(total)
        + (f"  engine saturated={current.engine_saturated}" if current.engine_saturated else "")
        + (f"  NOT FORWARDING: {current.interface_problem}" if current.interface_problem else "")
    )


def cmd_stats(args: argparse.Namespace) -> int:
    """Text lines with rates, or `--json`: the objects the HTTP API gives, one a line."""
    interval = INTERVAL if args.interval is None else args.interval
    if not 0 < interval <= MAX_INTERVAL:
        return fail(f"--interval: more than 0 and at most {MAX_INTERVAL:g} seconds, not "
                    f"{interval:g}", USAGE_EXIT)  # fmt: skip
    if args.seconds < 0:
        return fail(f"--seconds: not negative, not {args.seconds:g}", USAGE_EXIT)
    with ControlClient(args.control) as client:
        if args.once:
            _once(client, args.json, interval)
            return 0
        every = None if args.json and args.interval is None else interval
        _live(client, args.json, every, args.seconds)
    return 0


def _once(client: ControlClient, as_json: bool, interval: float) -> None:
    """JSON: the snapshot `GET /stats` answers, at once. Text: two snapshots `interval`
    apart, for rates (one snapshot alone has only counters, and printed 0 bit/s)."""
    first = client.stats()
    if as_json:
        print(first.model_dump_json())
        return
    time.sleep(interval)
    second = client.stats()
    for before, now in ((first.ingress, second.ingress), (first.egress, second.egress)):
        if now is not None:
            print(_stats_line(before, now))


def _live(client: ControlClient, as_json: bool, every: float | None, seconds: float) -> None:
    """Until `seconds` (0: until stopped): each direction's line at most every `every` seconds
    (None: every report), and with --json each spec change as `/stats/stream` gives it. A
    `seconds` shorter than a line's interval still prints each direction's first line (a rate
    needs two reports `every` apart: `--seconds 1` printed nothing)."""
    previous: dict[str, DirectionStats] = {}
    printed: set[str] = set()
    grace = every or INTERVAL
    deadline = time.monotonic() + seconds if seconds else math.inf
    silence = max(STATS_SILENCE, 3 * grace)
    for message in client.subscribe(silence):
        now = time.monotonic()
        covered = bool(printed) and printed >= set(previous)
        if now > deadline and (covered or now > deadline + grace + 1.0):
            break
        if isinstance(message, SpecChanged):
            if as_json:
                print(message.model_dump_json(), flush=True)
            continue
        if isinstance(message, WorkerRestarted):
            print(f"linkshaper: the {message.direction} worker {message.cause}; restarted as "
                  f"pid {message.pid}", file=sys.stderr, flush=True)  # fmt: skip
            continue
        sample = message.stats
        before = previous.get(sample.direction)
        if before is None and not as_json:  # a rate needs two reports: the first only counts
            previous[sample.direction] = sample
            continue
        if every is not None and before is not None and sample.at - before.at < every:
            continue
        if as_json:
            print(message.model_dump_json(), flush=True)
        else:
            print(_stats_line(before, sample), flush=True)
        printed.add(sample.direction)
        previous[sample.direction] = sample
