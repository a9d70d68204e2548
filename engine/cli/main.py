"""`linkshaper`: the command line, one module per group of commands (`serve`: run and http;
`live`: get, set, flush, stats; `timelines`: record, replay, plot; `captures`: capture, fates;
`environments`: ns, lab; `doctor`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from engine.cli import captures, completion, doctor, environments, live, serve, timelines
from engine.cli.common import fail
from engine.kernel.python_path import seal_python_path
from engine.model.errors import LinkshaperError
from engine.model.version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linkshaper", description="A userspace link shaper between two interfaces."
    )
    parser.add_argument("--version", action="version", version=f"linkshaper {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (serve, timelines, live, captures, environments, doctor, completion):
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    seal_python_path()  # before anything starts a child Python: none imports from the cwd
    logging.basicConfig(level=logging.INFO, format="linkshaper: %(message)s", stream=sys.stderr)
    # Ctrl-C (SIGINT) stops any command, `record` and `replay` among them, also when it was
    # started with SIGINT ignored, as a script's background jobs are (and then Python leaves it
    # ignored): `kill -INT` is how such a job is stopped with its file closed whole.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except LinkshaperError as exc:
        code = fail(str(exc))
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # The reader went away (`linkshaper stats --json | head -1`): quietly, as a pipeline's
        # tools do. Python would report the pipe again flushing stdout at exit; point it at
        # /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 128 + signal.SIGPIPE
    raise SystemExit(code)


if __name__ == "__main__":
    main()
