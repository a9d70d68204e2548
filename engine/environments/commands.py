"""The one command line that starts an engine from another process (the lab, shaped
namespaces, the container's entrypoint): `linkshaper run OUTER INNER SPEC --control PATH`,
with this Python, so a virtual environment's engine is the one that runs."""

from __future__ import annotations

import sys


def engine_command(outer: str, inner: str, spec_path: str, control: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "engine.cli.main", "run", outer, inner, spec_path,
        "--control", control, *extra,
    ]  # fmt: skip
