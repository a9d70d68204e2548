"""Where the TUI's engine is: a running `linkshaper run` (its control socket), or an engine the
TUI starts itself. Either way the TUI gets two `multiprocessing.connection` objects, one for
requests and one for the subscription, and speaks the same protocol over them."""

from __future__ import annotations

import contextlib
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Protocol

from engine.daemon.hosted import HostedEngine, start_hosted_engine
from engine.model.spec import Spec
from engine.protocol.control import ControlError, connect


class EngineSource(Protocol):
    #: One line for the status bar.
    description: str

    @property
    def reconnects(self) -> bool:
        """Whether to try again after the engine went away."""
        ...

    def open(self) -> tuple[Connection, Connection]:
        """(requests, events); raises ControlError when there is no engine."""
        ...

    def close(self) -> None: ...

    def explain(self) -> str:
        """More about why the engine went away, or ""."""
        ...

    @property
    def control_path(self) -> str | None:
        """A control socket for a connection of its own (the packets view), if there is one."""
        ...


class SocketSource:
    """A running engine's control socket; reattaching is always possible."""

    reconnects = True

    def __init__(self, path: str) -> None:
        self.path = path
        self.description = f"control {path}"

    def open(self) -> tuple[Connection, Connection]:
        requests = connect(self.path)
        try:
            return requests, connect(self.path)
        except ControlError:
            requests.close()
            raise

    def close(self) -> None:
        pass

    def explain(self) -> str:
        return ""

    @property
    def control_path(self) -> str | None:
        return self.path


#: How long an engine this TUI started has to open its control socket.
HOSTED_START_SECONDS = 30.0


class HostedSource:
    """An engine that this TUI starts on OUTER and INNER, and stops when it quits. The TUI
    talks to it over its control socket, as to any engine, so that it reattaches after a
    stall as `tui --control` does (a request that timed out leaves its connection to be
    dropped); the pipes to it only tie its life to this process's."""

    def __init__(self, outer: str, inner: str, spec: Spec, netns: str | None = None) -> None:
        self.outer, self.inner, self.spec, self.netns = outer, inner, spec, netns
        self.description = f"own engine {outer} ↔ {inner}" + (f" in {netns}" if netns else "")
        self.engine: HostedEngine | None = None

    @property
    def reconnects(self) -> bool:
        """While the engine runs (a stopped one is not started again)."""
        return self.engine is None or self.engine.process.is_alive()

    def open(self) -> tuple[Connection, Connection]:
        if self.engine is None:
            self.engine = start_hosted_engine(self.outer, self.inner, self.spec, self.netns)
            return self._wait_for_socket()
        return self._connect()

    def _connect(self) -> tuple[Connection, Connection]:
        path = self.control_path
        if self.engine is None or path is None or not self.engine.process.is_alive():
            raise ControlError(f"the engine this TUI started has stopped ({self.log_tail()})")
        return SocketSource(path).open()

    def _wait_for_socket(self) -> tuple[Connection, Connection]:
        """Connections once the new engine listens (it starts its workers first)."""
        until = time.monotonic() + HOSTED_START_SECONDS
        while True:
            try:
                return self._connect()
            except ControlError:
                if time.monotonic() > until or not self.reconnects:
                    raise
            time.sleep(0.05)

    def explain(self) -> str:
        return self.log_tail()

    @property
    def control_path(self) -> str | None:
        return self.engine.control_path if self.engine is not None else None

    def log_tail(self) -> str:
        if self.engine is None:
            return "no log"
        with contextlib.suppress(OSError):
            lines = Path(self.engine.log_path).read_text().strip().splitlines()
            if lines:
                return f"{self.engine.log_path}: {lines[-1]}"
        return self.engine.log_path

    def close(self) -> None:
        if self.engine is not None:
            self.engine.stop()
            for pipe in (self.engine.requests, self.engine.events):
                pipe.close()  # nobody reads them: they only tied the engine to this process
