"""The commands environments run: `ip`, `tc`, `sysctl`, `iptables` and the like through one
runner, the namespaces `ip netns` knows, and the one command line that starts an engine from
another process (the lab, shaped namespaces, the container's entrypoint): `linkshaper run
OUTER INNER SPEC --control PATH`, with this Python, so a virtual environment's engine runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence

from engine.kernel.python_path import python_module_command
from engine.model.errors import LinkshaperError


class CommandError(LinkshaperError, RuntimeError):
    """A command an environment needs failed; the message is the command and its complaint."""


def in_netns(netns: str | None, *args: str) -> list[str]:
    """`args` as a command line that runs in network namespace `netns` (None: this one)."""
    return list(args) if netns is None else ["ip", "netns", "exec", netns, *args]


def run_command(
    args: Sequence[str],
    netns: str | None = None,
    check: bool = True,
    error: type[LinkshaperError] = CommandError,
) -> subprocess.CompletedProcess[str]:
    """Run `args` (in `netns`) with its output captured. With `check`, a failure raises `error`
    with one line: the command (without the namespace's prefix) and what it printed."""
    done = subprocess.run(in_netns(netns, *args), capture_output=True, text=True)
    if check and done.returncode != 0:
        why = done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}"
        raise error(f"{' '.join(args)}: {why}")
    return done


def network_namespaces() -> set[str]:
    """The names of the network namespaces `ip netns` knows (in /run/netns)."""
    listed = run_command(["ip", "netns", "list"], check=False).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def kill_namespace_processes(netns: str) -> None:
    """SIGKILL every process in `netns`: deleting a namespace does not stop them."""
    for pid in run_command(["ip", "netns", "pids", netns], check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def engine_command(
    outer: str,
    inner: str,
    spec_path: str,
    control: str,
    *extra: str,
    profiles: tuple[str, str] | None = None,
) -> list[str]:
    """`linkshaper run OUTER INNER SPEC [INGRESS_PROFILE EGRESS_PROFILE] --control PATH ...`."""
    return python_module_command(
        "engine.cli.main", "run", outer, inner, spec_path,
        *(profiles or ()), "--control", control, *extra,
    )  # fmt: skip
