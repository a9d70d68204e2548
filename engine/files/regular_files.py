"""Reading a file that someone else named (a spec, a trace) without trusting what it is, and
writing one so that no reader ever sees it half-written.

The engine runs as root and takes paths from spec files and requests, so a path may name a
FIFO (an open or read that never returns), a device (`/dev/zero` reads forever) or a file of
any size. Only regular files of bounded size are read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat

#: How a file someone else named is opened: never blocking on a FIFO's open or read, never
#: becoming a controlling terminal, never inherited by a child.
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


def read_regular_file(path: str, limit: int, follow_links: bool = True) -> bytes:
    """The contents of the regular file at `path`, at most `limit` bytes, or OSError (ELOOP
    for a symbolic link at `path` unless `follow_links`)."""
    fd = os.open(path, READ_FLAGS if follow_links else READ_FLAGS | os.O_NOFOLLOW)
    try:
        return read_regular_fd(fd, limit)
    finally:
        os.close(fd)


def read_regular_fd(fd: int, limit: int) -> bytes:
    """The contents of the regular file open at `fd` (from where it stands), at most `limit`
    bytes, or OSError (EINVAL if it is not a regular file, EFBIG if larger)."""
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    if status.st_size > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:  # it grew while being read
            raise OSError(errno.EFBIG, f"larger than {limit} bytes")
    return b"".join(chunks)


def open_without_links(path: str) -> int:
    """A descriptor for reading the file at the absolute `path`, reached without following
    any symbolic link: each directory on the way is opened with O_NOFOLLOW|O_DIRECTORY
    relative to the one before, and the file itself with O_NOFOLLOW. OSError (ELOOP or
    ENOTDIR) if a link stands anywhere on the path: a link swapped in after the path was
    checked is refused, not followed."""
    parts = [part for part in path.split("/") if part]
    if not path.startswith("/") or not parts or any(part in (".", "..") for part in parts):
        raise OSError(errno.EINVAL, "not a plain absolute path")
    directory = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = os.open(
                part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory
            )
            os.close(directory)
            directory = inner
        return os.open(parts[-1], READ_FLAGS | os.O_NOFOLLOW, dir_fd=directory)
    finally:
        os.close(directory)


#: Random bytes in the name of a temporary file made beside a target: enough that nobody guesses
#: it before it exists (the PID, which `GET /info` shows, was guessed).
TEMPORARY_NAME_BYTES = 16
#: Names tried when one is taken (by chance or by someone who got there first): one clash in
#: 2**128 is chance, so a second is someone trying, and a third is not worth waiting for.
TEMPORARY_NAME_TRIES = 3
#: The permission bits of a file made afresh (a spec, a profile): readable by all, as before.
NEW_FILE_MODE = 0o644


def _mode_to_keep(path: str, default: int) -> int:
    """The permission bits of the file at `path` if it is a regular file of ours, else
    `default`: a link or someone else's file planted at the name does not choose them."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return default
    if stat.S_ISREG(status.st_mode) and status.st_uid == os.geteuid():
        return stat.S_IMODE(status.st_mode) & 0o777  # never set-id bits
    return default


def create_new_file(path: str, mode: int) -> int:
    """A descriptor open for writing on a file made now at `path` (mode `mode` from the start);
    OSError (EEXIST, ELOOP) if anything, a symbolic link too, is already there. Nothing that
    another user planted at the name is ever opened, followed or truncated."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def _create_temporary_beside(directory: str, name: str) -> tuple[str, int]:
    """A new file in `directory` under a name nobody could guess (mode 0600 until written)."""

    def attempt() -> tuple[str, int]:
        random = secrets.token_hex(TEMPORARY_NAME_BYTES)
        temporary = os.path.join(directory, f".{name}.{random}.tmp")
        return temporary, create_new_file(temporary, 0o600)

    for _ in range(TEMPORARY_NAME_TRIES - 1):
        with contextlib.suppress(FileExistsError):
            return attempt()
    return attempt()


def write_atomically(path: str, data: bytes, durable: bool = True, mode: int | None = None) -> None:
    """Replace the file at `path` with `data`: written to a new file beside it (flushed to disk
    if `durable`), then renamed over it, so a reader (or, if durable, a crash) sees the old
    contents or the new, never part. The file gets `mode`, or keeps its permission bits if it
    is a regular file of ours (else NEW_FILE_MODE); OSError if anything fails (the old file is
    untouched).

    The engine runs as root and the directory may be writable by others: the temporary file is
    made with O_EXCL|O_NOFOLLOW under a random name, so nothing planted beside the target is
    written through, and the rename replaces whatever is at `path` (a symbolic link itself, not
    what it points to)."""
    directory, name = os.path.split(os.path.abspath(path))
    final_mode = mode if mode is not None else _mode_to_keep(path, NEW_FILE_MODE)
    temporary, fd = _create_temporary_beside(directory, name)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, final_mode)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
