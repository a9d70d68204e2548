"""Many frames per system call: `recvmmsg` and `sendmmsg` through ctypes, which Python's socket
module lacks. A bulk stream spends most of its time in the two system calls per frame; with
frames queued up, one call each way takes up to BATCH of them (offloads off, one TCP stream:
+50 % in a bare loop here). Frames stay where they were read: each has its slot of one buffer,
and the same slots are sent from.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket

BATCH = 32
#: One frame's room: the largest super-frame (64 KiB) behind its vnet header, rounded up.
SLOT = 65_536 + 64
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


_libc = ctypes.CDLL(None, use_errno=True)
_recvmmsg = _libc.recvmmsg
_recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
_recvmmsg.restype = ctypes.c_int
_sendmmsg = _libc.sendmmsg
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
        self.buffer = bytearray(BATCH * SLOT)
        self.view = memoryview(self.buffer)
        base = ctypes.addressof((ctypes.c_char * len(self.buffer)).from_buffer(self.buffer))
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
        self._read_address = ctypes.addressof(self._read)
        self._send_address = ctypes.addressof(self._send)
        self._mmsg_size = ctypes.sizeof(_MMsgHdr)

    def receive(self, sock: socket.socket, flags: int = MSG_WAITFORONE) -> int:
        """Read up to BATCH frames: blocks (up to the socket's receive timeout) for the first
        one if the socket blocks, then takes what is already queued. Raises BlockingIOError
        when nothing came, OSError on other errors."""
        while True:  # a signal interrupts the call: go on, as socket.recv does (PEP 475)
            count: int = _recvmmsg(sock.fileno(), self._read_address, BATCH, flags, None)
            if count >= 0:
                return count
            if ctypes.get_errno() != errno.EINTR:
                raise _error()

    def frame(self, index: int) -> memoryview:
        start = index * SLOT
        return self.view[start : start + self.sizes[index]]

    def send(self, sock: socket.socket, start: int, stop: int) -> int:
        """Send frames start..stop-1 as received (and perhaps changed in place) in one call.
        Returns how many went, from `start`, at least one; raises the first frame's error,
        as `socket.send` would."""
        lengths, send_lengths = self.sizes, self._send_lengths
        for i in range(start, stop):
            send_lengths[i] = lengths[i]
        address = self._send_address + start * self._mmsg_size
        while True:
            sent: int = _sendmmsg(sock.fileno(), address, stop - start, 0)
            if sent >= 0:
                return sent
            if ctypes.get_errno() != errno.EINTR:
                raise _error()
