"""`linkshaper capture`: what the links do to each frame, to a pcapng file; `linkshaper fates`:
a capture file summed up (per direction and flow link: frames by fate, delay percentiles, the
longest loss bursts), or plotted."""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from engine.cli.common import fail
from engine.model.fates import DEFAULT_SNAPLEN, MAX_SNAPLEN, wanted_records
from engine.protocol.client import ControlClient
from engine.protocol.control import add_control_option
from engine.protocol.messages import CaptureLost, CaptureRequest

if TYPE_CHECKING:
    from engine.captures.pcapng import ReadFate
    from engine.cli.common import SubParsers

#: The causes a loss burst is made of (queue overflows and blocks are counted apart).
LOSSES = ("loss", "burst loss")


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
    capture.add_argument("--seconds", type=float, default=0.0, help="stop after this long")
    capture.set_defaults(func=cmd_capture)

    fates = sub.add_parser("fates", help="sum up a capture file: fates, delays, loss bursts")
    fates.add_argument("file", metavar="FILE.pcapng")
    fates.add_argument("--plot", action="store_true", help="delay over time, drops by cause")
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


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(frames: list[ReadFate]) -> str:
    """The text `linkshaper fates` prints."""
    groups: dict[tuple[str, str], list[ReadFate]] = defaultdict(list)
    for frame in sorted(frames, key=lambda f: f.time):  # arrival order
        groups[(frame.direction, frame.link)].append(frame)
    lines = []
    lost = sum(f.lost_before for f in frames)
    for (direction, link), group in sorted(groups.items()):
        fates = Counter(f.fate for f in group)
        lines.append(f"{direction}, link {link}: {len(group)} frames")
        for fate, count in fates.most_common():
            lines.append(f"  {fate:<12} {count:>8}  {100 * count / len(group):6.2f} %")
        delays = sorted(f.delay_ms for f in group if f.fate == "forwarded")
        if delays:
            figures = ", ".join(
                f"p{int(q * 100)} {_percentile(delays, q):.3f}" for q in (0.5, 0.9, 0.99)
            )
            lines.append(f"  delay ms: min {delays[0]:.3f}, {figures}, max {delays[-1]:.3f}")
            queued = statistics.median(f.queued_ms for f in group if f.fate == "forwarded")
            lines.append(f"  queued ms: median {queued:.3f}")
        bursts = loss_bursts(group)
        if bursts:
            longest = ", ".join(str(b) for b in bursts[:5])
            lines.append(f"  longest loss bursts (frames in a row): {longest}")
    if lost:
        lines.append(f"{lost} records were lost while capturing (not in the file)")
    return "\n".join(lines)


def loss_bursts(frames: list[ReadFate]) -> list[int]:
    """Runs of frames lost in a row (random or bursty loss), longest first."""
    runs: list[int] = []
    run = 0
    for frame in frames:
        if frame.fate in LOSSES:
            run += 1
            continue
        if run:
            runs.append(run)
        run = 0
    if run:
        runs.append(run)
    return sorted(runs, reverse=True)


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
    print(summary(frames))
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
