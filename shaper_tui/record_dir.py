"""The TUI's recordings directory, private or refused.

`r` and `c` write there, and the TUI often runs as root: a directory that is a link planted
by another user, is someone else's, or is writable by others (a sticky /tmp) would let that
user choose where root writes or read the packet heads written. So the directory is looked
at without following a link, and made 0700 (with its parents) when missing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.model.errors import LinkshaperError

#: The directory's mode when the TUI makes it.
RECORD_DIR_MODE = 0o700


class RecordDirError(LinkshaperError):
    """A directory the TUI will not write recordings in; one line naming it and why."""


def _refusal(path: Path) -> str | None:
    """Why PATH may not hold recordings, or None."""
    status = os.lstat(path)
    if stat.S_ISLNK(status.st_mode):
        return "a symbolic link, not followed: name the directory itself"
    if not stat.S_ISDIR(status.st_mode):
        return "not a directory"
    if status.st_uid != os.geteuid():
        return f"owned by uid {status.st_uid}, not you"
    if status.st_mode & 0o002:
        return "world-writable (a shared directory): use a private directory (0700)"
    if status.st_mode & 0o020:
        return "group-writable: use a private directory (0700)"
    return None


def private_record_dir(path: Path) -> Path:
    """PATH made absolute (links not resolved), made 0700 with its parents if missing;
    RecordDirError if it is a link, someone else's, or writable by others."""
    try:
        os.makedirs(path, mode=RECORD_DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RecordDirError(f"--record-dir {path}: {exc.strerror}") from None
    reason = _refusal(path)
    if reason is not None:
        raise RecordDirError(f"--record-dir {path}: {reason}")
    return Path(os.path.abspath(path))
