"""Which offloads an interface has on, read with the ethtool ioctl (what `ethtool -k` shows),
so that `linkshaper doctor` needs no ethtool binary and no privilege: reading them needs none.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import socket
import struct

from engine.kernel.interface_state import ifreq_name

SIOCETHTOOL = 0x8946
#: The ethtool "get" commands of the five offloads that change what an AF_PACKET socket sees,
#: by the names `ethtool -K` takes to switch them.
OFFLOAD_COMMANDS = {
    "rx": 0x14,  # ETHTOOL_GRXCSUM
    "tx": 0x16,  # ETHTOOL_GTXCSUM
    "tso": 0x1E,  # ETHTOOL_GTSO
    "gso": 0x23,  # ETHTOOL_GGSO
    "gro": 0x2B,  # ETHTOOL_GGRO
}


def offloads(ifname: str) -> dict[str, bool]:
    """Each offload of OFFLOAD_COMMANDS: on or off, in this network namespace. OSError when
    there is no such interface (ENODEV); an offload the driver cannot say is left out."""
    name = ifreq_name(ifname)
    found: dict[str, bool] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for feature, command in OFFLOAD_COMMANDS.items():
            value = ctypes.create_string_buffer(struct.pack("II", command, 0), 8)
            request = struct.pack("16sP16x", name, ctypes.addressof(value))
            try:
                fcntl.ioctl(probe, SIOCETHTOOL, request)
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # this driver cannot say
                    continue
                raise
            found[feature] = struct.unpack("II", value.raw)[1] != 0
    return found


ETHTOOL_GDRVINFO = 0x03
#: struct ethtool_drvinfo: cmd, driver[32], version[32], fw_version[32], bus_info[32],
#: erom_version[32], reserved2[12], five u32 counts.
_DRVINFO_SIZE = 196


def driver(ifname: str) -> str:
    """The interface's driver as `ethtool -i` names it (`veth`, `virtio_net`...), "" if it
    cannot say; OSError when there is no such interface."""
    info = ctypes.create_string_buffer(struct.pack("I", ETHTOOL_GDRVINFO), _DRVINFO_SIZE)
    request = struct.pack("16sP16x", ifreq_name(ifname), ctypes.addressof(info))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            fcntl.ioctl(probe, SIOCETHTOOL, request)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                return ""
            raise
    return info.raw[4:36].split(b"\0", 1)[0].decode(errors="replace")
