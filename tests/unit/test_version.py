"""`--version` on both commands prints the one version the package's metadata carries."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from engine.model.version import __version__

BIN = Path(sys.executable).parent


def test_the_metadata_reads_the_one_version() -> None:
    assert importlib.metadata.version("linkshaper") == __version__


def test_linkshaper_and_tui_print_it() -> None:
    for command, first in (("linkshaper", "linkshaper"), ("tui", "tui (linkshaper)")):
        out = subprocess.run([str(BIN / command), "--version"], capture_output=True, text=True,
                             timeout=60, check=True)  # fmt: skip
        assert out.stdout == f"{first} {__version__}\n"
        assert out.stderr == ""
