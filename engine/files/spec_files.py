"""Reading a spec file someone named: a regular file of bounded size (see regular_files.py),
parsed by the pure model."""

from __future__ import annotations

from engine.files.regular_files import read_regular_file
from engine.model.spec import MAX_SPEC_BYTES, Spec, SpecError, loads_spec


def read_spec(path: str) -> Spec:
    """Read a spec file; missing, unreadable, odd (a FIFO, a device) or oversized files are
    SpecErrors as well."""
    try:
        text = read_regular_file(path, MAX_SPEC_BYTES)
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror or exc}") from None
    return loads_spec(text)
