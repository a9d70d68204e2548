"""What every `linkshaper` command shares: its log, how it fails, and the parser type."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

log = logging.getLogger("linkshaper")

#: argparse's own exit code for a command line it cannot use.
USAGE_EXIT = 2


def fail(message: str, code: int = 1) -> int:
    """One line on stderr, `linkshaper: ` first; returns the exit code."""
    print(f"linkshaper: {message}", file=sys.stderr)
    return code


def command_after_dashes(command: list[str]) -> list[str]:
    """`exec NAME -- CMD...`: the command, with the `--` that separates it taken off."""
    return command[1:] if command and command[0] == "--" else command
