"""AF_PACKET sockets for the engine's two interfaces, and what their frames' ancillary data says.

Both sockets use PACKET_VNET_HDR, so frames keep their offload state (partial checksum, GSO)
in a 10-byte header; see `engine.core.frames`. The receiving socket ignores frames leaving its own
interface, the engine's own transmissions among them, so nothing is forwarded twice.
"""

from __future__ import annotations

import ctypes
import fcntl
import socket
import struct

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_STATISTICS = 6
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
SO_TIMESTAMPNS = 35
PACKET_AUXDATA = 8
#: tpacket_auxdata: status, len, snaplen, mac, net, VLAN TCI, VLAN TPID.
_AUXDATA = struct.Struct("IIIHHHH")
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
ETH_P_8021Q = 0x8100
#: Room for an arrival stamp (a struct timespec) behind its cmsg header.
STAMP_SPACE = socket.CMSG_SPACE(16)
#: Room for the ancillary data of one frame from the receiver: stamp and auxdata.
ANCILLARY_SPACE = STAMP_SPACE + socket.CMSG_SPACE(_AUXDATA.size)
_TIMESPEC = struct.Struct("qq")

#: The receive buffer holds about this long of frames at the interface's speed, and no more:
#: frames the worker cannot take are dropped by the kernel before they wait (counted as the
#: engine's own drops, "engine saturated") instead of queueing unseen and reading as link
#: delay. With 16 MiB, a worker saturated by one offloads-off TCP stream through 10 ms held
#: frames 30-50 ms in it, and a probe beside the stream saw 55-185 ms one way. 1 ms was tried
#: and lost frames of short bursts (6,000 back to back) on a loaded 2-core machine, where a
#: worker is off its core for several ms at a time: 10 ms until measured on a quiet one.
RX_BUFFER_TIME = 0.010
#: Never less: room for a worker's scheduling hiccup at up to 1 Gbit/s (8 ms of frames there),
#: and for a dozen 64 KiB super-frames with offloads on.
RX_BUFFER_FLOOR = 1024 * 1024
#: Never more (the size used before it was sized in time): 13 ms at 10 Gbit/s, past 134 Gbit/s
#: the cap binds.
RX_BUFFER_CAP = 16 * 1024 * 1024
#: What an interface that tells no speed (a tunnel, loopback) is taken to run at: a veth's.
ASSUMED_SPEED_MBIT = 10_000
SIOCETHTOOL = 0x8946
ETHTOOL_GSET = 0x1
#: struct ethtool_cmd: cmd, supported, advertising, speed, duplex, port, phy address,
#: transceiver, autoneg, mdio, maxtxpkt, maxrxpkt, speed_hi, and the rest (44 bytes in all).
_ETHTOOL_CMD = struct.Struct("IIIHBBBBBBIIH14x")
#: A blocking read on the receiver gives up after this long (the kernel rounds it up to its
#: tick, 4 ms here), so a worker that streams still sees its pipe when no frame comes.
READ_TIMEOUT = 0.002
TX_BUFFER = 4 * 1024 * 1024


def open_receiver(ifname: str) -> socket.socket:
    """A non-blocking socket that sees every frame arriving on `ifname`, in promiscuous mode.
    Switched to blocking, a read waits at most READ_TIMEOUT."""
    # Protocol 0 until bind: a socket made with ETH_P_ALL would see every interface at first.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)  # for VLAN tags: see `vlan_tag`
        limit_blocking_reads(sock)
        sock.bind((ifname, ETH_P_ALL))
        speed = interface_speed_mbit(sock, ifname)
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rx_buffer_bytes(speed))
        index = socket.if_nametoindex(ifname)
        membership = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, membership)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def rx_buffer_bytes(speed_mbit: int | None) -> int:
    """The receive buffer for an interface of `speed_mbit` (None: unknown, ASSUMED_SPEED_MBIT):
    RX_BUFFER_TIME at that speed, within RX_BUFFER_FLOOR and RX_BUFFER_CAP. (The kernel doubles
    what is set, for its bookkeeping per frame; SO_RCVBUF reads back the double.)"""
    bits = (speed_mbit or ASSUMED_SPEED_MBIT) * 1_000_000
    return max(RX_BUFFER_FLOOR, min(RX_BUFFER_CAP, int(bits * RX_BUFFER_TIME / 8)))


def interface_speed_mbit(sock: socket.socket, ifname: str) -> int | None:
    """The interface's link speed as its driver reports it (ethtool's, asked through `sock`,
    so in the socket's network namespace whatever /sys shows), None if it tells none."""
    data = ctypes.create_string_buffer(_ETHTOOL_CMD.pack(ETHTOOL_GSET, *[0] * 12), 44)
    request = struct.pack("16sP", ifname.encode()[:15], ctypes.addressof(data))
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, request)
    except OSError:
        return None
    fields = _ETHTOOL_CMD.unpack(data.raw)
    speed = fields[3] | fields[12] << 16
    return speed if 0 < speed < 0xFFFF_FFFF and speed != 0xFFFF else None


def limit_blocking_reads(sock: socket.socket) -> None:
    """A blocking read on `sock` gives up after READ_TIMEOUT with EAGAIN (BlockingIOError),
    as the worker's streaming loops expect of their receiver."""
    timeout = struct.pack("ll", 0, int(READ_TIMEOUT * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)


def open_sender(ifname: str) -> socket.socket:
    """A blocking socket that sends frames (with vnet header) out of `ifname` and reads none."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, TX_BUFFER)
        sock.bind((ifname, 0))
    except OSError:
        sock.close()
        raise
    return sock


def stamp_arrivals(sock: socket.socket, on: bool) -> None:
    """Have the kernel stamp each frame as it arrives (read with `recvmsg_into`)."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, int(on))


def arrival_stamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's arrival stamp of a frame (wall-clock seconds), if its ancillary data has one."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return float(seconds + nanoseconds * 1e-9)
    return None


def vlan_tag(ancillary: list[tuple[int, int, bytes]]) -> bytes | None:
    """The VLAN tag (TPID and TCI, 4 bytes as on the wire) that the kernel took off the frame
    before handing it over, from its auxdata; None for an untagged frame. (The kernel moves
    a received frame's outer tag into metadata before any packet socket sees it.)"""
    for level, kind, data in reversed(ancillary):  # auxdata comes last
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= _AUXDATA.size:
            status, _len, _snap, _mac, _net, tci, tpid = _AUXDATA.unpack_from(data)
            if not status & TP_STATUS_VLAN_VALID:
                return None
            if not status & TP_STATUS_VLAN_TPID_VALID:
                tpid = ETH_P_8021Q
            return struct.pack("!HH", tpid, tci)
    return None


def kernel_drops(sock: socket.socket) -> int:
    """Frames the kernel dropped because the receive buffer was full, since the last call."""
    _packets, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    return int(drops)


SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
#: Classic BPF: the kernel's random number (SKF_AD_OFF + SKF_AD_RANDOM), the instructions
#: that sample with it, and sock_filter's layout (code, jump if true, jump if false, k).
_SKF_AD_RANDOM = 0xFFFF_F000 + 56
_BPF_LD_W_ABS, _BPF_MOD_K, _BPF_JEQ_K, _BPF_RET_K = 0x20, 0x94, 0x15, 0x06
_SOCK_FILTER = struct.Struct("HBBI")


def sample_frames(sock: socket.socket, every: int) -> None:
    """Have `sock` take only about one frame in `every` (chosen at random by the kernel: a
    classic BPF filter on SKF_AD_RANDOM), the rest never queued to it. Undone by
    `take_every_frame`."""
    program = [
        (_BPF_LD_W_ABS, 0, 0, _SKF_AD_RANDOM),
        (_BPF_MOD_K, 0, 0, every),
        (_BPF_JEQ_K, 0, 1, 0),
        (_BPF_RET_K, 0, 0, 0x40000),  # the whole frame
        (_BPF_RET_K, 0, 0, 0),  # none of it
    ]
    code = ctypes.create_string_buffer(b"".join(_SOCK_FILTER.pack(*op) for op in program))
    fprog = struct.pack("HL", len(program), ctypes.addressof(code))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def take_every_frame(sock: socket.socket) -> None:
    """Undo `sample_frames` (nothing if it was not done)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
    except OSError as exc:
        if exc.errno != 2:  # ENOENT: there was none
            raise
