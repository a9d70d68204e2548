"""Timelines from the command line: `record` a running engine's changes, `replay` a timeline
on one, `plot` a recorded one in the terminal."""

from __future__ import annotations

import argparse
import gc
import time
from typing import TYPE_CHECKING

from engine.cli.common import fail, log
from engine.model.errors import LinkshaperError
from engine.protocol.client import ControlClient
from engine.protocol.control import add_control_option, finite_float

if TYPE_CHECKING:
    from engine.cli.common import SubParsers
    from engine.timelines.reading import StreamedTimeline


def add_parsers(sub: SubParsers) -> None:
    record = sub.add_parser("record", help="record a running engine's changes")
    add_control_option(record)
    record.add_argument("file", metavar="FILE", help="timeline to write (JSON Lines)")
    record.add_argument("--stats", action="store_true", help="also record stats samples")
    record.add_argument("--seconds", type=finite_float, default=0.0, help="stop after this long")
    record.set_defaults(func=cmd_record)

    replay = sub.add_parser("replay", help="apply a timeline's steps on time")
    add_control_option(replay)
    replay.add_argument("file", metavar="FILE", help="timeline (JSON Lines)")
    replay.add_argument("--loop", action="store_true", help="start again at the end")
    replay.add_argument("--speed", type=finite_float, default=1.0, help="2 = twice as fast")
    replay.add_argument(
        "--check", action="store_true", help="only check the timeline (no engine needed)"
    )
    replay.set_defaults(func=cmd_replay)

    plot = sub.add_parser("plot", help="draw a recorded timeline in the terminal")
    plot.add_argument("file", metavar="FILE", help="timeline with stats lines")
    plot.add_argument("--out", metavar="PATH", help="also save it (.html keeps the colours)")
    plot.add_argument("--width", type=int, default=100)
    plot.add_argument("--height", type=int, default=36)
    plot.add_argument("--quiet", action="store_true", help="save only, do not draw")
    plot.set_defaults(func=cmd_plot)


def cmd_record(args: argparse.Namespace) -> int:
    """Attach and write every applied change (and stats, with --stats) until Ctrl-C."""
    from engine.timelines.recorder import TimelineRecorder

    deadline = time.monotonic() + args.seconds if args.seconds else None
    with ControlClient(args.control) as client:
        try:  # never through a symbolic link at FILE (see `open_recording`)
            recorder = TimelineRecorder(args.file, stats=args.stats)
        except OSError as exc:
            return fail(f"{args.file}: {exc.strerror}")
        try:
            recorder.spec(client.get_spec(), "attached")
            log.info("recording to %s; Ctrl-C stops", args.file)
            for message in client.subscribe():
                recorder.take(message)
                if deadline is not None and time.monotonic() > deadline:
                    break
        finally:
            recorder.close()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Apply a timeline's steps on time: checked whole first, then read as it goes (bounded
    memory whatever its length). A refused step stops it: exit 1 with `step N (at T s): why`."""
    from engine.timelines.reading import open_timeline
    from engine.timelines.replay import ReplayRunner

    with open_timeline(args.file) as timeline:
        summary = timeline.check()
        if args.check:
            problem = _unreadable_trace(timeline)
            if problem:
                return fail(f"{args.file}: {problem}")
            log.info(
                "%s: %d steps over %.1f s, %d stats lines: well-formed, and every trace file it "
                "names can be read here (flows, and traces where the engine runs, are checked "
                "by the engine as each step comes)",
                args.file, summary.steps, summary.duration, summary.stats,
            )  # fmt: skip
            return 0
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
                args.file, summary.steps, summary.duration / args.speed,
                " (looping)" if args.loop else "",
            )  # fmt: skip
            gc.freeze()  # a full pass of the cyclic collector (15-20 ms) would make a step late
            try:
                runner.run()
            except LinkshaperError as exc:
                return fail(runner.error or str(exc))
    return 0


#: Distinct trace files `replay --check` reads (each up to MAX_TRACE_BYTES): a timeline naming
#: more is told apart from one whose traces were all read.
MAX_CHECKED_TRACES = 256


def _unreadable_trace(timeline: StreamedTimeline) -> str | None:
    """The first step naming a trace file that cannot be read here, said as the replay would
    stop on it; None if every one can (up to MAX_CHECKED_TRACES distinct files)."""
    from engine.daemon.gate import named_traces
    from engine.files.trace_files import read_trace
    from engine.model.trace import TraceError, trace_fields
    from engine.timelines.timeline import SpecStep

    checked: set[str] = set()
    for number, step in enumerate(timeline.iter_steps(), start=1):
        if isinstance(step, SpecStep):
            paths = {path for _where, path in trace_fields(step.spec)}
        else:
            paths = {path for key, value in step.set.items() for path in named_traces(key, value)}
        for path in sorted(paths - checked):
            if len(checked) >= MAX_CHECKED_TRACES:
                return f"more than {MAX_CHECKED_TRACES} trace files named: not all checked"
            checked.add(path)
            try:
                read_trace(path)
            except TraceError as exc:
                return f"step {number} (at {step.at:g} s): {exc} (here; the replay would stop)"
    return None


def cmd_plot(args: argparse.Namespace) -> int:
    """Draw a recording, read in one streaming pass (bounded memory, linear time)."""
    from engine.timelines.plot import plot_timeline
    from engine.timelines.reading import open_timeline

    with open_timeline(args.file) as timeline:
        if next(timeline.iter_stats(), None) is None:
            log.warning("%s has no stats lines: only the configured values are drawn", args.file)
        plot_timeline(timeline, args.out, args.width, args.height, show=not args.quiet)
    return 0
