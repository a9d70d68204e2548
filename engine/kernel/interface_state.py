"""Whether an interface is there and up (and bringing it up), and a socket that wakes a waiter
when links change.

A worker whose interface went down or away waits here instead of crashing and being restarted
in a loop: the kernel announces every link change on the rtnetlink group RTMGRP_LINK, so the
wait costs nothing until something changes (and a slow backstop check, in case a message is
lost when the socket's buffer overflows).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import socket
import struct
from typing import Literal

#: The same three states as `engine.model.stats.InterfaceState`, which reports them.
InterfaceState = Literal["up", "down", "missing"]

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
RTMGRP_LINK = 0x1
#: What reads and sends raise when the interface went down (ENETDOWN) or was deleted (ENXIO on
#: send, ENODEV on bind): the worker then waits for it rather than counting errors forever.
LINK_ERRNOS = frozenset({errno.ENETDOWN, errno.ENXIO, errno.ENODEV})


def ifreq_name(ifname: str) -> bytes:
    """The name for an ioctl's 16-byte field. Never cut short (that would name another
    interface): a longer one is ENODEV, as no interface can have it."""
    name = ifname.encode()
    if len(name) > 15:
        raise OSError(errno.ENODEV, f"no interface can be called {ifname}: over 15 bytes")
    return name


def interface_state(ifname: str) -> InterfaceState:
    """`missing`, `down` (administratively) or `up`, in the caller's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            request = struct.pack("16sh14x", ifreq_name(ifname), 0)
            reply = fcntl.ioctl(probe, SIOCGIFFLAGS, request)
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                return "missing"
            raise
    (flags,) = struct.unpack_from("h", reply, 16)
    return "up" if flags & IFF_UP else "down"


def bring_up(ifname: str) -> None:
    """Set `ifname` administratively up (as `ip link set dev IFNAME up`); OSError if there is
    no such interface or this process may not."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            name = ifreq_name(ifname)
            reply = fcntl.ioctl(probe, SIOCGIFFLAGS, struct.pack("16sh14x", name, 0))
            (flags,) = struct.unpack_from("h", reply, 16)
            if not flags & IFF_UP:
                fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sh14x", name, flags | IFF_UP))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot bring {ifname} up: {exc.strerror}") from None


def links_problem(names: tuple[str, ...]) -> tuple[InterfaceState, str]:
    """The first interface of `names` that is not up, as (state, a sentence), or ("up", "")."""
    for name in names:
        state = interface_state(name)
        if state == "missing":
            return state, f"interface {name} is missing"
        if state == "down":
            return state, f"interface {name} is down"
    return "up", ""


class LinkWatch:
    """A netlink socket that becomes readable whenever any interface changes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, RTMGRP_LINK))
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> None:
        """Read every waiting announcement (their contents do not matter: the state is asked
        for afresh); an overflowed buffer (ENOBUFS) is cleared the same way."""
        with contextlib.suppress(BlockingIOError):
            for _ in range(1000):
                try:
                    self.sock.recv(65536)
                except OSError as exc:
                    if exc.errno != errno.ENOBUFS:
                        raise

    def close(self) -> None:
        self.sock.close()
