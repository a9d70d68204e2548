"""Which offloads an interface has on, read with the ethtool ioctl (what `ethtool -k` shows),
so that `linkshaper doctor` needs no ethtool binary and no privilege: reading them needs none.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import socket
import struct

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
    name = ifname.encode()[:15]
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
