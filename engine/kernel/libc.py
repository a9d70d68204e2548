"""The C library, loaded once, for the system calls Python's standard library lacks
(`recvmmsg`, `sendmmsg`, `setns`, `prctl`). Each caller reads `ctypes.get_errno()` itself."""

from __future__ import annotations

import ctypes

libc = ctypes.CDLL(None, use_errno=True)
