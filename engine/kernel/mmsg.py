"""Many frames per system call: `recvmmsg` and `sendmmsg` through ctypes, which Python's socket
module lacks. A bulk stream spends most of its time in the two system calls per frame; with
frames queued up, one call each way takes up to BATCH of them (offloads off, one TCP stream:
+50 % in a bare loop here). Frames stay where they were read: each has its slot of one buffer,
and the same slots are sent from.
"""

from __future__ import annotations

import array
import ctypes
import errno
import mmap
import os
import socket
import struct

from engine.kernel.afpacket import (
    ANCILLARY_SPACE,
    PACKET_AUXDATA,
    SO_TIMESTAMPNS,
    STAMP_SPACE,
    TP_STATUS_VLAN_VALID,
    vlan_tag,
)
from engine.kernel.libc import libc

BATCH = 32
#: One frame's room: the largest super-frame (64 KiB) behind its vnet header, and a VLAN tag
#: put back (see `vlan_tag`), rounded up.
SLOT = 65_536 + 64
#: Each frame's ancillary data (auxdata, see afpacket.vlan_tag), rounded up to 8 bytes.
CONTROL = -(-ANCILLARY_SPACE // 8) * 8
_CMSG_HEADER = struct.Struct("QiI")  # struct cmsghdr: length, level, type
#: Return after the first frame with whatever else is queued, rather than wait for BATCH.
MSG_WAITFORONE = 0x10000


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_IoVec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("length", ctypes.c_uint)]


_recvmmsg = libc.recvmmsg
_recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
_recvmmsg.restype = ctypes.c_int
_sendmmsg = libc.sendmmsg
_sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
_sendmmsg.restype = ctypes.c_int


def _error() -> OSError:
    """What `socket.recv` and `socket.send` raise for the C call's errno."""
    code = ctypes.get_errno()
    return (BlockingIOError if code == errno.EAGAIN else OSError)(code, os.strerror(code))


class FrameBatch:
    """BATCH frame slots in one buffer, with the headers to read into them and to send them
    from. `receive` fills slots 0..n-1; `frame(i)` is a writable view of frame i, which can
    be changed in place before `send` sends frames from slot `start` on."""

    def __init__(self) -> None:
        # Anonymous memory, which the kernel gives page by page as frames are written: a batch
        # of short frames costs a page each, not its 2 MiB of slots (workers hold batches).
        self._memory = mmap.mmap(-1, BATCH * SLOT)
        self.buffer = memoryview(self._memory)
        self.view = self.buffer
        base = ctypes.addressof((ctypes.c_char * len(self.buffer)).from_buffer(self.buffer))
        #: Runs of this batch's frames that a link holds (the worker's count, see HeldRun).
        self.held_runs = 0
        self._read_iov = (_IoVec * BATCH)()
        self._send_iov = (_IoVec * BATCH)()
        self._read = (_MMsgHdr * BATCH)()
        self._send = (_MMsgHdr * BATCH)()
        for i in range(BATCH):
            self._read_iov[i].base = self._send_iov[i].base = base + i * SLOT
            self._read_iov[i].length = SLOT
            self._read[i].hdr.iov = ctypes.pointer(self._read_iov[i])
            self._send[i].hdr.iov = ctypes.pointer(self._send_iov[i])
            self._read[i].hdr.iovlen = self._send[i].hdr.iovlen = 1
        #: The frames' lengths as the kernel wrote them into the read headers (`sizes[i]`),
        #: as plain ints: a ctypes attribute per frame would cost more than its handling.
        stride = ctypes.sizeof(_MMsgHdr) // 4
        first = _MMsgHdr.length.offset // 4
        words = memoryview(self._read).cast("B").cast("I")
        self.sizes = words[first::stride]
        # The same for the lengths to send, in the send iovecs (size_t, after the pointer).
        self._send_lengths = memoryview(self._send_iov).cast("B").cast("L")[1::2]
        # Ancillary data: each read header points at its slot's CONTROL bytes, whose length
        # the kernel overwrites with what it used, so `receive` sets them back each time.
        self._control = bytearray(BATCH * CONTROL)
        control_base = ctypes.addressof(
            (ctypes.c_char * len(self._control)).from_buffer(self._control)
        )
        for i in range(BATCH):
            self._read[i].hdr.control = control_base + i * CONTROL
            self._read[i].hdr.controllen = CONTROL
        words = memoryview(self._read).cast("B").cast("Q")
        self._control_lengths = words[
            _MsgHdr.controllen.offset // 8 :: ctypes.sizeof(_MMsgHdr) // 8
        ]
        self._full_control = memoryview(array.array("Q", [CONTROL] * BATCH))
        control_words = memoryview(self._control).cast("I")
        #: Per slot, the first control message's type and the first word of its data: with
        #: only auxdata on the socket, its status, which tells a VLAN tag (`vlan_tag`).
        self.first_kinds = control_words[3 :: CONTROL // 4]
        self.first_words = control_words[4 :: CONTROL // 4]
        #: The same for the second control message, where the first is an arrival stamp (a
        #: socket with `afpacket.stamp_arrivals` on): then that one is the auxdata.
        second = STAMP_SPACE // 4
        self.second_kinds = control_words[second + 3 :: CONTROL // 4]
        self.second_words = control_words[second + 4 :: CONTROL // 4]
        self._control_quads = memoryview(self._control).cast("q")
        self._read_address = ctypes.addressof(self._read)
        self._send_address = ctypes.addressof(self._send)
        self._mmsg_size = ctypes.sizeof(_MMsgHdr)

    def forget(self) -> None:
        """Give the buffer's pages back to the kernel: the batch costs no memory until frames
        are read into it again (the pages come back as they are written)."""
        self._memory.madvise(mmap.MADV_DONTNEED)

    def receive(self, sock: socket.socket, flags: int = MSG_WAITFORONE, limit: int = BATCH) -> int:
        """Read up to `limit` frames: blocks (up to the socket's receive timeout) for the first
        one if the socket blocks, then takes what is already queued. Raises BlockingIOError
        when nothing came, OSError on other errors. With `limit` 1, a frame with its ancillary
        data for less than `socket.recvmsg_into`, which also asks the kernel for the name of
        the frame's interface (an ioctl) each time."""
        self._control_lengths[:limit] = self._full_control[:limit]
        while True:  # a signal interrupts the call: go on, as socket.recv does (PEP 475)
            count: int = _recvmmsg(sock.fileno(), self._read_address, limit, flags, None)
            if count >= 0:
                return count
            if ctypes.get_errno() != errno.EINTR:
                raise _error()

    def vlan_tag(self, index: int) -> bytes | None:
        """The VLAN tag the kernel took off frame `index` (see afpacket.vlan_tag), from the
        control messages the last `receive` stored for it."""
        used = self._control_lengths[index]
        offset, end = index * CONTROL, index * CONTROL + min(used, CONTROL)
        messages: list[tuple[int, int, bytes]] = []
        while offset + _CMSG_HEADER.size <= end:
            length, level, kind = _CMSG_HEADER.unpack_from(self._control, offset)
            if length < _CMSG_HEADER.size or offset + length > end:
                break
            messages.append(
                (level, kind, bytes(self._control[offset + _CMSG_HEADER.size : offset + length]))
            )
            offset += -(-length // 8) * 8
        return vlan_tag(messages)

    def maybe_tagged(self, index: int) -> bool:
        """Whether frame `index` may have had a VLAN tag taken off (then `vlan_tag`):
        False only when its auxdata, first or after a stamp, says it had none."""
        kind = self.first_kinds[index]
        if kind == PACKET_AUXDATA:
            return bool(self.first_words[index] & TP_STATUS_VLAN_VALID)
        if kind == SO_TIMESTAMPNS and self.second_kinds[index] == PACKET_AUXDATA:
            return bool(self.second_words[index] & TP_STATUS_VLAN_VALID)
        return True

    def arrival_stamp(self, index: int) -> float | None:
        """The kernel's arrival stamp of frame `index` (wall-clock seconds), if it has one."""
        if self.first_kinds[index] != SO_TIMESTAMPNS:
            return None
        at = index * CONTROL // 8 + _CMSG_HEADER.size // 8
        return self._control_quads[at] + self._control_quads[at + 1] * 1e-9

    def arrival_stamp_ns(self, index: int) -> int | None:
        """`arrival_stamp` exactly, in integer nanoseconds (a float of wall-clock seconds is
        238 ns coarse, so the seconds may come out before the stamp)."""
        if self.first_kinds[index] != SO_TIMESTAMPNS:
            return None
        at = index * CONTROL // 8 + _CMSG_HEADER.size // 8
        quads = self._control_quads
        return int(quads[at] * 1_000_000_000 + quads[at + 1])

    def frame(self, index: int) -> memoryview:
        start = index * SLOT
        return self.view[start : start + self.sizes[index]]

    def send(self, sock: socket.socket, start: int, stop: int) -> int:
        """Send frames start..stop-1 as received (and perhaps changed in place) in one call.
        Returns how many went, from `start`, at least one; raises the first frame's error,
        as `socket.send` would."""
        lengths, send_lengths = self.sizes, self._send_lengths
        if stop - start == 1:  # `socket.send`: the same system call's work, less of ctypes'
            offset = start * SLOT
            sock.send(self.view[offset : offset + lengths[start]])
            return 1
        for i in range(start, stop):
            send_lengths[i] = lengths[i]
        address = self._send_address + start * self._mmsg_size
        while True:
            sent: int = _sendmmsg(sock.fileno(), address, stop - start, 0)
            if sent >= 0:
                return sent
            if ctypes.get_errno() != errno.EINTR:
                raise _error()
