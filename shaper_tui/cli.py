"""`tui`: attach to a running engine, start one, or run the demo lab.

tui [--control PATH]        attach to `linkshaper run` (default socket)
tui OUTER INNER [SPEC]      start an engine between two interfaces, stop it on quit
tui --demo                  a lab with traffic both ways, and the UI on it
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import shtab

from engine.kernel.python_path import seal_python_path
from engine.model.errors import LinkshaperError
from engine.model.version import __version__
from engine.protocol.control import add_control_option, finite_float
from shaper_tui.record_dir import private_record_dir

# Textual, the app and the engine's sources (scapy's packet layers among them) load only when
# the UI starts: `tui --completion SHELL` and `tui --help` print without them, in a moment.
if TYPE_CHECKING:
    from textual.app import App

    from shaper_tui.engine_source import EngineSource

SHELLS = ("bash", "zsh", "fish")


def default_record_dir() -> Path:
    """Where `r` and `c` write unless `--record-dir` says: the user's data directory
    (`$XDG_DATA_HOME/linkshaper/recordings`, else `~/.local/share/linkshaper/recordings`),
    not wherever the TUI happened to be started."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "linkshaper" / "recordings"


class _PrintCompletion(argparse.Action):
    """`--completion SHELL`: print the script and exit, as `linkshaper completion` does (and
    through the same function: zsh's many-word positionals fixed alike)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:  # fmt: skip
        from engine.cli.completion import shell_script

        print(shell_script(parser, str(values)), end="")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui",
        description="Tune a linkshaper link live from the terminal.",
        epilog="Keys: arrows change values, Enter types one, p presets, b block, "
        "R reset (asks first), u undo, U redo, ? help, q quit.",
    )
    parser.add_argument("--version", action="version", version=f"tui (linkshaper) {__version__}")
    parser.add_argument("interfaces", nargs="*", metavar="OUTER INNER [SPEC]",
                        help="start an engine of its own between these interfaces")  # fmt: skip
    add_control_option(parser, what="attach to this control socket")
    parser.add_argument("--demo", action="store_true",
                        help="bring up a lab with live traffic and open the UI on it")  # fmt: skip
    parser.add_argument("--demo-seconds", type=finite_float, default=3600.0,
                        help="how long the demo traffic runs at most (default 3600)")  # fmt: skip
    parser.add_argument("--prefix", default="lsdemo", help="the demo lab's namespace prefix")
    parser.add_argument("--ns", metavar="NAME", help="attach to a shaped namespace's engine")
    parser.add_argument("--replay", metavar="FILE", help="replay this timeline once attached")
    parser.add_argument("--speed", type=finite_float, default=1.0, help="replay speed (2 = twice)")
    parser.add_argument("--loop", action="store_true", help="replay in a loop")
    parser.add_argument("--record-dir", default=str(default_record_dir()),
                        help="where r and c write (default: %(default)s)")  # fmt: skip
    # `tui --completion bash|zsh|fish`: its options from this parser (docs/cli.md, "Completion").
    parser.add_argument("--completion", choices=SHELLS, action=_PrintCompletion,
                        help="print a shell's completion script")  # fmt: skip
    for action in parser._actions:  # what names a file completes as one (fish: nothing else)
        if action.dest in ("interfaces", "control", "replay"):
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        elif action.dest == "record_dir":
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
    return parser


class UsageError(LinkshaperError, ValueError):
    """A command line `tui` cannot use."""


def _fail(message: str, code: int = 1) -> int:
    print(f"tui: {message}", file=sys.stderr)
    return code


def _source(args: argparse.Namespace) -> EngineSource:
    from engine.files.spec_files import read_spec
    from engine.model.spec import PASS_THROUGH
    from shaper_tui.engine_source import HostedSource, SocketSource

    interfaces = list(args.interfaces)
    if args.ns:
        from engine.namespaces.namespace import Namespace, NamespaceError

        ns = Namespace.load(args.ns)
        if ns.backend == "tc":
            raise NamespaceError(
                f"{ns.name} is shaped by tc; `linkshaper run --ns {ns.name}` hands it to an engine "
                "(its rates carry over), then `tui --ns` tunes it"
            )
        return SocketSource(ns.control)
    if not interfaces:
        return SocketSource(args.control)
    if len(interfaces) not in (2, 3):
        raise UsageError("give OUTER INNER [SPEC], or nothing to attach to a running engine")
    spec = read_spec(interfaces[2]) if len(interfaces) == 3 else PASS_THROUGH
    return HostedSource(interfaces[0], interfaces[1], spec)


def _app_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "replay": args.replay,
        "speed": args.speed,
        "loop": args.loop,
        "record_dir": args.record_dir,
    }


def _demo(args: argparse.Namespace) -> int:
    from engine.lab.demo import DemoLab
    from engine.lab.lab import Lab
    from shaper_tui.app import create_app
    from shaper_tui.engine_source import SocketSource

    if os.geteuid() != 0:
        return _fail("the demo builds network namespaces: run it as root")
    print("Bringing up the demo lab (client ↔ engine ↔ server) with iperf3 both ways…")
    with DemoLab(Lab(args.prefix), seconds=args.demo_seconds) as demo:
        # Printed before the UI takes the screen, so it is there again once the UI ends.
        print(f"Control socket: {demo.control}")
        print(f"Beside the UI: linkshaper stats --control {demo.control}   (or get, set …)")
        app = create_app(SocketSource(demo.control), **_app_options(args))
        with _closing_on_signals(app, demo.close):
            app.run()
    print(f"Demo lab removed (and its control socket {demo.control}).")
    return 0


@contextmanager
def _closing_on_signals(app: App[None], teardown: Callable[[], None]) -> Iterator[None]:
    """SIGTERM quits as `q` does, so that the lab is torn down on the way out. SIGHUP means
    the terminal is gone: Textual would block for ever writing its goodbye to it (its writer
    thread waits on a pty nobody reads), so `teardown` runs at once and the process ends."""

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        app.call_later(app.exit)

    def hang_up(signum: int, _frame: FrameType | None) -> None:
        try:
            teardown()
        finally:
            os._exit(128 + signum)

    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, terminate),
        signal.SIGHUP: signal.signal(signal.SIGHUP, hang_up),
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> None:
    seal_python_path()  # before anything starts a child Python: none imports from the cwd
    args = build_parser().parse_args(argv)
    if args.record_dir != str(default_record_dir()):  # named: refused now, in one line
        try:
            private_record_dir(Path(args.record_dir))
        except LinkshaperError as exc:
            raise SystemExit(_fail(str(exc))) from None
    from shaper_tui.app import create_app

    try:
        if args.demo:
            code = _demo(args)
        else:
            create_app(_source(args), **_app_options(args)).run()
            code = 0
    except LinkshaperError as exc:
        code = _fail(str(exc))
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()
