"""The kernel's fast path for a transparent direction: tc's `clsact` qdisc on the receiving
interface and, at its ingress, a filter that matches every frame with `mirred egress
redirect` to the other interface, set up, read and removed over rtnetlink.

The filter is `u32 match u32 0 0`: the kernels this was written on have no `matchall`
classifier (ENOENT for its kind), while u32 is in every distribution's. A packet socket
still sees a frame that this redirects (taps run before tc ingress), so the worker reads
them; it must not send them too (see engine.daemon.worker.fast_path).

The messages are built here with `struct` rather than with pyroute2 (a dependency, used
for the lab's counters): importing pyroute2 took 3-12 s in each worker on a loaded 2-core
machine, past the supervisor's 15 s watchdog, where these few messages cost nothing.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator

#: The clsact qdisc, and its ingress hook (ffff:fff2), where the filter goes.
CLSACT_PARENT = 0xFFFF_FFF1
CLSACT_HANDLE = 0xFFFF_0000
INGRESS_PARENT = 0xFFFF_FFF2
#: Our filter's priority on that hook: a number of its own, so removing it touches no other.
PRIORITY = 0x4C53
#: tc counts a frame's bytes from its network header at ingress; the engine counts the
#: Ethernet header too.
ETHERNET_HEADER = 14
ETH_P_ALL = 0x0003

RTM_NEWQDISC, RTM_NEWTFILTER, RTM_DELTFILTER, RTM_GETTFILTER = 36, 44, 45, 46
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 1, 4, 0x200, 0x400, 0x300
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_U32_SEL, TCA_U32_ACT = 5, 7
TCA_ACT_KIND, TCA_ACT_OPTIONS, TCA_ACT_STATS = 1, 2, 4
TCA_MIRRED_PARMS = 2
TCA_STATS_BASIC = 1
TC_ACT_STOLEN = 4
TCA_EGRESS_REDIR = 1
TC_U32_TERMINAL = 1

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_TCMSG = struct.Struct("=BBHiIII")  # family, pads, interface, handle, parent, info
_ATTR = struct.Struct("=HH")  # length, type
_SELECTOR = struct.Struct("=BBBxHHhhI")  # tc_u32_sel: flags, offshift, nkeys, ..., hmask
_KEY = struct.Struct("=IIii")  # tc_u32_key: mask, value, offset, offset mask
_MIRRED = struct.Struct("=IIiiiiI")  # tc_mirred: index, capab, action, refs, binds, eaction, if
_BASIC = struct.Struct("=QI")  # gnet_stats_basic: bytes, packets


class TcRefused(Exception):
    """The kernel would not set up (or show) the redirect: the engine forwards itself."""


def _attr(kind: int, payload: bytes) -> bytes:
    data = _ATTR.pack(_ATTR.size + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The attributes in `data`: (type without its flags, payload)."""
    offset = 0
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            return
        yield kind & 0x3FFF, data[offset + _ATTR.size : offset + length]
        offset += (length + 3) & ~3


def _find(data: bytes | None, kind: int) -> bytes | None:
    if data is None:
        return None
    return next((payload for found, payload in _attrs(data) if found == kind), None)


def redirect_filter(tx_index: int) -> bytes:
    """The u32 filter's options: match every frame, and redirect it out of `tx_index`."""
    selector = _SELECTOR.pack(TC_U32_TERMINAL, 0, 1, 0, 0, 0, 0, 0) + _KEY.pack(0, 0, 0, 0)
    mirred = _MIRRED.pack(0, 0, TC_ACT_STOLEN, 0, 0, TCA_EGRESS_REDIR, tx_index)
    action = _attr(TCA_ACT_KIND, b"mirred\0") + _attr(
        TCA_ACT_OPTIONS, _attr(TCA_MIRRED_PARMS, mirred)
    )
    return _attr(TCA_U32_SEL, selector) + _attr(TCA_U32_ACT, _attr(1, action))


class KernelRedirect:
    """The redirect from `rx_ifname` to `tx_ifname` in this process's network namespace."""

    def __init__(self, rx_ifname: str, tx_ifname: str) -> None:
        self.rx_ifname = rx_ifname
        self.tx_ifname = tx_ifname
        self._sock: socket.socket | None = None
        self._sequence = 0

    def install(self) -> None:
        """The redirect in place (replacing one left by a worker before this one); TcRefused
        with the kernel's reason if it cannot be."""
        rx, tx = self._index(self.rx_ifname), self._index(self.tx_ifname)
        create = NLM_F_CREATE | NLM_F_EXCL
        self._clsact(rx)  # (made by `prepare` already, unless the interface is new)
        self._delete(rx)
        info = PRIORITY << 16 | socket.htons(ETH_P_ALL)
        header = _TCMSG.pack(0, 0, 0, rx, 0, INGRESS_PARENT, info)
        body = _attr(TCA_KIND, b"u32\0") + _attr(TCA_OPTIONS, redirect_filter(tx))
        self._ask(RTM_NEWTFILTER, create, header + body)

    def prepare(self) -> None:
        """The clsact qdisc on both interfaces, made before the worker sends a frame. The
        kernel grafts a new qdisc with the interface deactivated for a moment: a frame sent
        on it meanwhile goes to the noop qdisc, counted only in its tx_dropped, while the
        packet socket's send reports success (NET_XMIT_CN). Made at the first redirect, with
        the other direction's worker sending on that interface, it lost 0-186 frames of a
        10,000/s stream, and one datagram in 1,500 of the capture test's shaped direction.
        Once there, the qdisc stays: a filter's coming and going stops nothing."""
        for ifname in (self.rx_ifname, self.tx_ifname):
            self._clsact(self._index(ifname))

    def _clsact(self, index: int) -> None:
        """The clsact qdisc on interface `index`, made if it is not there."""
        clsact = _TCMSG.pack(0, 0, 0, index, CLSACT_HANDLE, CLSACT_PARENT, 0)
        flags = NLM_F_CREATE | NLM_F_EXCL
        self._ask(RTM_NEWQDISC, flags, clsact + _attr(TCA_KIND, b"clsact\0"), (errno.EEXIST,))

    def remove(self) -> tuple[int, int]:
        """The redirect gone (nothing if it was not there); returns its final counters
        (`counters`), read just before. TcRefused if the kernel refuses."""
        rx = self._index(self.rx_ifname)
        final = self._counters(rx)
        self._delete(rx)
        return final

    def counters(self) -> tuple[int, int]:
        """Frames and bytes (Ethernet header included) the redirect has forwarded since it was
        installed: its mirred action's own statistics. (0, 0) without one."""
        return self._counters(self._index(self.rx_ifname))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _index(self, ifname: str) -> int:
        try:
            return socket.if_nametoindex(ifname)
        except OSError as exc:
            raise TcRefused(f"{ifname}: {exc.strerror or exc}") from None

    def _delete(self, rx: int) -> None:
        """Our filter off the ingress hook, if there (ENOENT, EINVAL: it was not)."""
        info = PRIORITY << 16 | socket.htons(ETH_P_ALL)
        header = _TCMSG.pack(0, 0, 0, rx, 0, INGRESS_PARENT, info)
        self._ask(RTM_DELTFILTER, 0, header, (errno.ENOENT, errno.EINVAL))

    def _counters(self, rx: int) -> tuple[int, int]:
        header = _TCMSG.pack(0, 0, 0, rx, 0, INGRESS_PARENT, 0)
        for kind, payload in self._dump(RTM_GETTFILTER, header):
            if kind != RTM_NEWTFILTER or _TCMSG.unpack_from(payload)[6] >> 16 != PRIORITY:
                continue
            attrs = payload[_TCMSG.size :]
            actions = _find(_find(attrs, TCA_OPTIONS), TCA_U32_ACT)
            for _order, action in _attrs(actions or b""):
                basic = _find(_find(action, TCA_ACT_STATS), TCA_STATS_BASIC)
                if basic is not None and len(basic) >= _BASIC.size:
                    size, packets = _BASIC.unpack_from(basic)
                    return packets, size + ETHERNET_HEADER * packets
        return 0, 0

    def _socket(self) -> socket.socket:
        if self._sock is None:
            try:
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
                sock.bind((0, 0))
            except OSError as exc:
                raise TcRefused(f"netlink: {exc.strerror or exc}") from None
            sock.settimeout(2.0)
            self._sock = sock
        return self._sock

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self._sequence += 1
        message = _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | flags,
                               self._sequence, 0) + body  # fmt: skip
        try:
            self._socket().send(message)
        except OSError as exc:
            raise TcRefused(f"netlink: {exc.strerror or exc}") from None
        return self._sequence

    def _replies(self, sequence: int) -> Iterator[tuple[int, bytes]]:
        """The kernel's messages answering `sequence`: (type, payload), up to DONE or an
        error/acknowledgement (raised as TcRefused unless 0)."""
        sock = self._socket()
        while True:
            try:
                data = sock.recv(65536)
            except OSError as exc:
                raise TcRefused(f"netlink: {exc.strerror or exc}") from None
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, _flags, seq, _port = _HEADER.unpack_from(data, offset)
                payload = data[offset + _HEADER.size : offset + length]
                offset += (length + 3) & ~3
                if seq != sequence:
                    continue
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return
                yield kind, payload

    def _ask(self, kind: int, flags: int, body: bytes, ignored: tuple[int, ...] = ()) -> None:
        """Send one request and wait for its acknowledgement; an error in `ignored` is none."""
        sequence = self._send(kind, flags | NLM_F_ACK, body)
        try:
            for _ in self._replies(sequence):
                pass
        except OSError as exc:
            if exc.errno not in ignored:
                raise TcRefused(f"{exc.strerror} (errno {exc.errno})") from None

    def _dump(self, kind: int, body: bytes) -> Iterator[tuple[int, bytes]]:
        sequence = self._send(kind, NLM_F_DUMP, body)
        try:
            yield from list(self._replies(sequence))
        except OSError as exc:
            raise TcRefused(f"{exc.strerror} (errno {exc.errno})") from None
