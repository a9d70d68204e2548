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
import stat


def read_regular_file(path: str, limit: int) -> bytes:
    """The contents of the regular file at `path`, at most `limit` bytes, or OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
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
    finally:
        os.close(fd)


def write_atomically(path: str, data: bytes, durable: bool = True) -> None:
    """Replace the file at `path` with `data`: written to a new file beside it (flushed to disk
    if `durable`), then renamed over it, so a reader (or, if durable, a crash) sees the old
    contents or the new, never part. The file keeps its permission bits; OSError if anything
    fails (the old file is untouched)."""
    directory, name = os.path.split(os.path.abspath(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o644
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
