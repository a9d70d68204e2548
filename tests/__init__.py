"""linkshaper's tests. The lab harness they share with `bench/` is
`engine.lab.harness`."""

from pathlib import Path

#: The repository: tests run commands from here (`python -m tests.raw_frames`, the CLI).
ROOT = Path(__file__).resolve().parent.parent
