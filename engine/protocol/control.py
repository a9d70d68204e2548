"""The control socket's address, key and error, shared by its server (`control_server`) and its
clients: where an engine listens, the key a client proves it holds, and `connect`.

The authkey lives in a mode-0600 file beside the socket (`control.sock` -> `control.key`).
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import pwd
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from pathlib import Path

from engine.files.regular_files import read_regular_file
from engine.model.errors import LinkshaperError

DEFAULT_CONTROL_PATH = "/run/linkshaper/control.sock"


def add_control_option(
    parser: argparse.ArgumentParser, by_namespace: bool = False, what: str = "control socket"
) -> None:
    """`--control PATH`, the same in every command line that reaches an engine (`linkshaper`'s
    commands, `tui`). With `by_namespace` the default is left to `--ns NAME` (None here)."""
    default = None if by_namespace else DEFAULT_CONTROL_PATH
    where = f"{DEFAULT_CONTROL_PATH}, or the namespace's with --ns" if by_namespace else default
    parser.add_argument(
        "--control", default=default, metavar="PATH", help=f"{what} (default {where})"
    )


def finite_float(text: str) -> float:
    """A number option's type in every command line: `nan` and `inf` parse as floats but no
    comparison bounds them (`--seconds nan` would never end), so they are refused here, and
    argparse names the option in its one line."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"a finite number, not {text!r}")
    return value


#: A key file holds 64 hex digits and a newline: a larger file is not one, and is not read.
KEY_FILE_LIMIT = 256
#: Largest request read; a spec with thousands of flows is far smaller.
MAX_REQUEST = 32 * 1024 * 1024


def key_path(control_path: str) -> Path:
    return Path(control_path).with_suffix(".key")


def read_authkey(control_path: str) -> bytes:
    """The key the engine wrote beside its socket, or OSError. A symbolic link there is not
    the engine's (it writes a regular file) and is not followed; nor is a file that is not a
    key read whole."""
    try:
        text = read_regular_file(str(key_path(control_path)), KEY_FILE_LIMIT, follow_links=False)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(exc.errno, "a symbolic link, not followed") from None
        raise
    _check_owner(key_path(control_path))
    try:
        return bytes.fromhex(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise OSError(errno.EINVAL, "not a key") from None


def _check_owner(path: Path) -> None:
    """OSError unless the key is root's or this user's and open to nobody else: a key another
    user wrote or can change is not the engine's, and a client would prove it holds it to
    whoever listens there."""
    status = os.lstat(path)
    if status.st_uid not in (0, os.geteuid()):
        raise OSError(errno.EPERM, f"owned by uid {status.st_uid}: not the engine's")
    if status.st_mode & 0o077:
        raise OSError(errno.EPERM, f"mode {status.st_mode & 0o777:04o}, open to others: "
                      "not the engine's")  # fmt: skip


class ControlError(LinkshaperError, RuntimeError):
    """The engine answered with an error, or could not be reached."""


def _probe_socket(path: str) -> bool | None:
    """True: something at `path` accepts this process; None: a socket is there but refuses it
    for want of permission (an engine's socket is mode 0600); False: nothing listens."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except PermissionError:
        return None
    except OSError:
        return False
    finally:
        probe.close()
    return True


def socket_in_use(path: str) -> bool:
    """Whether something accepts connections on the AF_UNIX socket at `path`."""
    return _probe_socket(path) is True


def _socket_there(path: str) -> bool:
    """Whether a socket at `path` accepts this process, or refuses it for want of permission
    (it is there, but not this user's)."""
    return _probe_socket(path) is not False


def key_owner(control_path: str) -> str:
    """The name of the key file's owner (its uid when it has none, `its owner` when the
    file cannot be looked at)."""
    try:
        uid = os.stat(key_path(control_path)).st_uid
    except OSError:
        return "its owner"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def unreadable_key(path: str, exc: OSError) -> str:
    """Why a client cannot reach the engine whose key it may not read, in one line: when an
    engine's socket is there, that it is and whose key it is (mode 0600); when its folder is
    closed to this user, that it cannot tell."""
    if isinstance(exc, PermissionError):
        try:
            os.stat(path)
        except PermissionError:
            folder = Path(path).parent
            return (f"cannot tell whether an engine is at {path}: its folder {folder} is not "
                    "open to this user (run this as root)")  # fmt: skip
        except OSError:
            pass
        else:
            if _socket_there(path):
                owner = key_owner(path)
                return (f"an engine is at {path}, but its key {key_path(path)} is readable by "
                        f"{owner} only: run this as {owner} (sudo)")  # fmt: skip
    if exc.errno == errno.EPERM and exc.strerror:
        return f"the key {key_path(path)} is {exc.strerror}"
    return f"no engine at {path}: cannot read its key ({exc.strerror})"


#: How long a client waits for the engine to accept it and for each reply.
REPLY_TIMEOUT = 10.0


def no_answer(path: str, timeout: float) -> ControlError:
    return ControlError(f"no answer from the engine at {path} within {timeout:g} s")


@contextmanager
def deadline(conn: Connection, path: str, timeout: float) -> Iterator[None]:
    """Bounds a blocking exchange on `conn`: after `timeout` seconds a watchdog shuts the
    socket down, so the read blocked in it returns EOF, which is reported as no answer (a
    stopped or stalled engine would otherwise hold the client forever)."""
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        try:
            with socket.socket(fileno=os.dup(conn.fileno())) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    timer = threading.Timer(timeout, stop)
    timer.daemon = True
    timer.start()
    try:
        yield
    except (EOFError, OSError):
        if fired.is_set():
            raise no_answer(path, timeout) from None
        raise
    finally:
        timer.cancel()
    if fired.is_set():
        raise no_answer(path, timeout)


def connect(path: str, timeout: float = REPLY_TIMEOUT) -> Connection:
    """A connection to a running engine's control socket, its handshake done within
    `timeout` seconds."""
    try:
        authkey = read_authkey(path)
    except OSError as exc:
        raise ControlError(unreadable_key(path, exc)) from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.settimeout(None)
    except TimeoutError:
        sock.close()
        raise no_answer(path, timeout) from None
    except OSError as exc:
        sock.close()
        raise ControlError(f"no engine at {path}: {exc.strerror or exc}") from None
    conn = Connection(sock.detach())
    try:
        with deadline(conn, path, timeout):
            answer_challenge(conn, authkey)
            deliver_challenge(conn, authkey)
    except ControlError:
        conn.close()
        raise
    except (EOFError, OSError, AuthenticationError) as exc:
        conn.close()
        raise ControlError(f"no engine at {path}: {exc}") from None
    return conn
