"""`linkshaper capture`: what the links do to each frame, to a pcapng file; `linkshaper fates`:
a capture file summed up (per direction and flow link: frames by fate, delay percentiles, the
longest loss bursts), or plotted."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import TYPE_CHECKING

from engine.cli.common import fail
from engine.model.fates import DEFAULT_SNAPLEN, FATE_NAMES, MARKS, MAX_SNAPLEN, wanted_records
from engine.model.fates_summary import PERCENTILES, fate_key, summarise
from engine.protocol.client import ControlClient
from engine.protocol.control import add_control_option, finite_float
from engine.protocol.messages import CaptureLost, CaptureRequest

if TYPE_CHECKING:
    from engine.captures.pcapng import ReadFate
    from engine.cli.common import SubParsers


def add_parsers(sub: SubParsers) -> None:
    capture = sub.add_parser(
        "capture", help="write what the links do to each frame to a pcapng file (- for stdout)"
    )
    add_control_option(capture)
    capture.add_argument("file", metavar="FILE.pcapng")
    capture.add_argument("--direction", choices=("ingress", "egress", "both"), default="both")
    capture.add_argument("--drops-only", action="store_true", help="only frames dropped")
    capture.add_argument("--flow", metavar="LABEL", help="only this link (default, or a flow's)")
    capture.add_argument("--snaplen", type=int, default=DEFAULT_SNAPLEN,
                         help=f"bytes kept of each frame (default {DEFAULT_SNAPLEN})")  # fmt: skip
    capture.add_argument("--count", type=int, default=0, help="stop after this many frames")
    capture.add_argument("--seconds", type=finite_float, default=0.0, help="stop after this long")
    capture.set_defaults(func=cmd_capture)

    fates = sub.add_parser("fates", help="sum up a capture file: fates, delays, loss bursts")
    fates.add_argument("file", metavar="FILE.pcapng")
    shape = fates.add_mutually_exclusive_group()
    shape.add_argument("--plot", action="store_true", help="delay over time, drops by cause")
    shape.add_argument("--json", action="store_true", help="the summary as one JSON object")
    fates.set_defaults(func=cmd_fates)


def cmd_capture(args: argparse.Namespace) -> int:
    from engine.captures.pcapng import CaptureWriter  # scapy: only for these commands

    if not 14 <= args.snaplen <= MAX_SNAPLEN:
        return fail(f"--snaplen: 14 to {MAX_SNAPLEN} bytes, not {args.snaplen}")
    if args.count < 0 or args.seconds < 0:
        return fail("--count and --seconds: not negative")
    direction = None if args.direction == "both" else args.direction
    request = CaptureRequest(direction=direction, drops_only=args.drops_only, label=args.flow,
                             snaplen=args.snaplen)  # fmt: skip
    until = time.monotonic() + args.seconds if args.seconds else None
    try:  # before the engine is asked: a file that cannot be written is said at once
        writer = CaptureWriter(args.file)
    except OSError as exc:
        return fail(f"cannot write the capture to {args.file}: {exc.strerror or exc}")
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(writer.close)
        client = cleanup.enter_context(ControlClient(args.control))
        try:
            for message in client.capture(request, until):
                if isinstance(message, CaptureLost):
                    writer.lost_records(message.records)
                    continue
                writer.lost_records(message.lost)
                records = wanted_records(message.data, message.labels, args.flow,
                                         args.drops_only)  # fmt: skip
                if args.count:
                    records = records[: args.count - writer.written]
                writer.write(message.direction, records)
                if args.count and writer.written >= args.count:
                    break
        except KeyboardInterrupt:
            pass
    lost = f", {writer.lost} records lost (the capture read too slowly)" if writer.lost else ""
    print(f"linkshaper: {writer.written} frames captured{lost}", file=sys.stderr)
    return 0


def summary(frames: list[ReadFate]) -> str:
    """The text `linkshaper fates` prints: what `--json` gives, for people."""
    lines = []
    whole = summarise(frames)
    for link in whole.links:
        lines.append(f"{link.direction}, link {link.link}: {link.frames} frames")
        names = {fate_key(name): name for name in FATE_NAMES}
        counts = sorted(((n, c) for n, c in link.fates.items() if c), key=lambda p: -p[1])
        for key, count in counts:
            share = 100 * count / link.frames
            lines.append(f"  {names.get(key, key):<12} {count:>8}  {share:6.2f} %")
        marks = {key: name for _, name, key in MARKS}
        for key, count in link.impaired.items():
            if count:
                share = 100 * count / link.frames
                lines.append(f"  {marks.get(key, key):<12} {count:>8}  {share:6.2f} % (also)")
        if link.delay_samples:
            figures = ", ".join(
                f"{name} {getattr(link, f'delay_{name}_ms'):.3f}" for name, _ in PERCENTILES
            )
            lines.append(
                f"  delay ms: min {link.delay_min_ms:.3f}, {figures}, max {link.delay_max_ms:.3f}"
            )
            lines.append(f"  queued ms: median {link.queued_p50_ms:.3f}")
        if link.loss_bursts:
            longest = ", ".join(str(b) for b in link.loss_bursts)
            lines.append(f"  longest loss bursts (frames in a row): {longest}")
    if whole.records_lost:
        lines.append(f"{whole.records_lost} records were lost while capturing (not in the file)")
    return "\n".join(lines)


def cmd_fates(args: argparse.Namespace) -> int:
    from engine.captures.pcapng import read_capture  # scapy: only for these commands

    try:
        frames = list(read_capture(args.file))
    except (OSError, EOFError) as exc:
        return fail(f"{args.file}: {exc}")
    except Exception as exc:  # scapy's reader on a file that is not pcapng
        return fail(f"{args.file}: not a capture file ({exc})")
    if not frames:
        return fail(f"{args.file}: no frames with a linkshaper fate")
    print(summarise(frames).model_dump_json() if args.json else summary(frames))
    if args.plot:
        plot(frames)
    return 0


def plot(frames: list[ReadFate], width: int = 100, height: int = 30) -> None:
    """Delay over time per direction, and drops a second by cause, with plotext."""
    import plotext

    start = min(f.time for f in frames)
    plotext.terminal.limit(False, False)
    figure = plotext.figure
    figure.clear.all()
    figure.plot_size(width, height)
    figure.subplots(2, 1)
    plot = figure.subplot(1, 1)
    plot.title("delay (ms) over time (s): • ingress, o egress")
    for direction, marker in (("ingress", "•"), ("egress", "o")):
        points = [(f.time - start, f.delay_ms) for f in frames
                  if f.direction == direction and f.fate == "forwarded"]  # fmt: skip
        if points:
            plot.draw(plot.signal([p[0] for p in points], [p[1] for p in points], marker=marker))
    plot.legend(active=False)
    plot = figure.subplot(2, 1)
    causes = sorted({f.fate for f in frames} - {"forwarded"})
    plot.title("drops a second by cause: " + ", ".join(
        f"{cause} ({marker})" for cause, marker in zip(causes, "x+*#%@&$", strict=False)
    ))  # fmt: skip
    seconds = int(max(f.time for f in frames) - start) + 1
    for cause, marker in zip(causes, "x+*#%@&$", strict=False):
        per_second = [0.0] * seconds
        for f in frames:
            if f.fate == cause:
                per_second[int(f.time - start)] += 1
        plot.draw(plot.signal(list(range(seconds)), per_second, marker=marker))
    plot.legend(active=False)
    matrix = figure.build()
    print(matrix.string(colorless=not sys.stdout.isatty()))
