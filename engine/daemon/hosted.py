"""An engine that another program starts for itself (the TUI's `tui OUTER INNER`).

The supervisor runs in a `spawn`ed process and serves the same control protocol as on the
socket, over two Pipe ends: one for requests, one for the subscription. It stops on SIGTERM
and when the request end closes (its owner exited), so it never outlives its owner. Its log
goes to a file (in a private directory, see `start_hosted_engine`): the owner's terminal
belongs to the owner.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from engine.kernel.libc import libc
from engine.kernel.processes import stop_process
from engine.kernel.python_path import seal_python_path
from engine.model.spec import Spec

if TYPE_CHECKING:
    from engine.daemon.config import EngineConfig

CLONE_NEWNET = 0x40000000
#: The hosted engine's log goes in a new directory named so in the temporary directory.
LOG_DIRECTORY_PREFIX = "linkshaper-hosted-log-"


def enter_netns(name: str) -> None:
    """Move this process into the named network namespace (`ip netns` names)."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def _serve(
    config: EngineConfig,
    spec_json: str,
    netns: str | None,
    log_path: str,
    pipes: tuple[Connection, Connection],
) -> None:
    """The hosted engine's process: `pipes` are its ends of the requests and the events."""
    # Workers are spawned from here and inherit fd 2 and the namespace.
    # Root writes here: never through a link planted at the name.
    log_fd = os.open(
        log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
    )
    os.dup2(log_fd, 2)
    os.close(log_fd)
    logging.basicConfig(level=logging.INFO, format="linkshaper: %(message)s", stream=sys.stderr)
    from engine.daemon.supervisor import (
        Supervisor,  # here, so that importing this module stays light
    )

    if netns:
        enter_netns(netns)
    supervisor = Supervisor(config, Spec.model_validate_json(spec_json))
    supervisor.install_signal_handlers()
    supervisor.start()
    requests, events = pipes
    supervisor.serve(requests, stop_on_close=True)
    supervisor.serve(events)
    supervisor.run()


@dataclass
class HostedEngine:
    """A running hosted engine: its process and the owner's ends of the two pipes."""

    process: BaseProcess
    requests: Connection
    events: Connection
    log_path: str
    #: Its control socket (mode 0600 in a directory of its own), for what needs a connection
    #: of its own: the TUI's packets view.
    control_path: str | None = None
    #: The private directory made for its log (None: the caller chose the log's path).
    log_directory: str | None = None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (the supervisor stops its workers) and wait. The pipes are left to whoever
        reads them: they see them end, and close them in their own thread. The log made for
        it goes too if it was still running (nothing to explain); one that had died keeps
        its log, the last words its owner was shown the path of."""
        running = self.process.is_alive()
        stop_process(self.process, timeout)
        if self.control_path is not None:
            shutil.rmtree(os.path.dirname(self.control_path), ignore_errors=True)
        if running and self.log_directory is not None:
            shutil.rmtree(self.log_directory, ignore_errors=True)


def _ensure_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with a real stderr. It hands this process's
    stderr descriptor on, and inside a TUI stderr is a capture object whose fileno() is -1."""
    from multiprocessing import resource_tracker

    saved = sys.stderr
    try:
        try:
            usable = sys.stderr is not None and sys.stderr.fileno() >= 0
        except (OSError, ValueError, AttributeError):
            usable = False
        if not usable:
            sys.stderr = sys.__stderr__
        resource_tracker.ensure_running()
    finally:
        sys.stderr = saved


def start_hosted_engine(
    outer: str, inner: str, spec: Spec, netns: str | None = None, log_path: str | None = None
) -> HostedEngine:
    from engine.daemon.config import EngineConfig  # here, as the supervisor in `_serve`

    seal_python_path()  # spawn runs `python -c`: the cwd would come first on its sys.path
    context = multiprocessing.get_context("spawn")
    _ensure_resource_tracker()
    requests, requests_child = context.Pipe()
    events, events_child = context.Pipe()
    log_directory = None
    if log_path is None:
        # In a directory of its own (0700, a random name), not at a name in /tmp that another
        # user could guess and plant a link at; removed when it is stopped (see `stop`).
        log_directory = tempfile.mkdtemp(prefix=LOG_DIRECTORY_PREFIX)
        log_path = os.path.join(log_directory, "engine.log")
    control_path = os.path.join(tempfile.mkdtemp(prefix="linkshaper-hosted-"), "control.sock")
    # Not a daemon: a daemonic process may not start the workers it needs.
    process = context.Process(
        target=_serve,
        args=(
            EngineConfig(outer, inner, control_path=control_path),
            spec.model_dump_json(),
            netns,
            log_path,
            (requests_child, events_child),
        ),
        name="linkshaper-engine",
    )
    process.start()
    requests_child.close()
    events_child.close()
    return HostedEngine(process, requests, events, log_path, control_path, log_directory)
