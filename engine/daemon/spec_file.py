"""The spec in force kept on disk and in the log, at a pace: changes come as fast as a replay
makes them (hundreds a second); the file and the log follow with the latest (see Coalescer).
"""

from __future__ import annotations

import logging

from pydantic_core import to_json

from engine.daemon.coalescing import SPEC_LOG_INTERVAL, SPEC_WRITE_INTERVAL, Coalescer
from engine.files.regular_files import write_atomically
from engine.model.spec import Spec, seed_view

log = logging.getLogger("linkshaper")


class SpecFile:
    """Every change applied written to the spec file (if there is one and `persist`) and
    logged; `close()` at shutdown does what is pending."""

    def __init__(self, path: str | None, persist: bool) -> None:
        self.path = path
        self.persist = persist
        self._file = Coalescer(SPEC_WRITE_INTERVAL, self._write, "spec-file")
        self._applied_log = Coalescer(SPEC_LOG_INTERVAL, self._log_applied, "spec-log")

    def applied(self, spec: Spec, source: str) -> None:
        """`spec` was put in force, asked for by `source`: logged, and saved unless it is the
        file's own (SIGHUP)."""
        self._applied_log.submit(source)
        if source != "sighup":
            self._save(spec)
        else:  # what the file says already: an older change still to write would undo it
            self._file.discard()

    def close(self) -> None:
        self._file.close()  # the latest change on disk: a restart starts with it
        self._applied_log.close()

    @staticmethod
    def _log_applied(source: str, count: int) -> None:
        """One line for a change, one for a burst of them (a fast replay: hundreds a second)."""
        if count == 1:
            log.info("spec applied (from %s)", source)
        else:
            log.info("spec applied %d times (the latest from %s)", count, source)

    def _save(self, spec: Spec) -> None:
        """Have the spec in force written to the spec file, so that a SIGHUP or a restart keeps
        it (the seed's frontend wrote the file too): a lone change before this returns, a burst
        at most every SPEC_WRITE_INTERVAL, the latest always, at the latest at shutdown."""
        if not self.path or not self.persist:
            return
        self._file.submit(spec)

    @property
    def writes(self) -> int:
        """How often the spec file was written since the start (fewer than changes in a
        burst: see `_save`)."""
        return self._file.actions

    def _write(self, spec: Spec, _changes: int) -> None:
        """In the seed's shape (`seed_view`), which its engine reads unless extensions are set,
        replaced whole (`write_atomically`). A failure is logged; the change stays in force."""
        assert self.path is not None
        # (pydantic's encoder: Python's own, indented, took 0.5-1 s for 10,000 flows, which
        # a change's workers' answers waited for in this process; issue 38)
        text = to_json(seed_view(spec), indent=2) + b"\n"
        try:
            write_atomically(self.path, text)
        except OSError as exc:
            log.error(
                "cannot save the spec to %s: %s (it is in force; a restart would lose it)",
                self.path, exc.strerror or exc,
            )  # fmt: skip
