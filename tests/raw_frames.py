"""Raw Ethernet frames for tests, on a wire no socket of a host's own stack would put them on:

`send IFNAME` sends one frame per line of hex on stdin out of IFNAME and prints how many the
kernel took; `send-vnet IFNAME` does the same with a 10-byte virtio-net header at the start
of each line (offload metadata: a GSO super-frame, say), and prints the errors it met.
`capture IFNAME SECONDS MARKER` prints, for each frame seen arriving on IFNAME
within SECONDS that contains MARKER (bytes, given as text), a JSON line with its VLAN tag as
the kernel reports it (TPID and TCI from the frame's auxdata, or null: the kernel takes the
outer tag off before a packet socket sees the frame) and the frame's bytes in hex.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import time

# The kernel's constants and auxdata layout are written out here rather than taken from
# engine.kernel.afpacket: a test of the engine's tag handling must not read tags with the engine's
# own code, or one mistake made twice would pass.
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
PACKET_VNET_HDR = 15
MAX_SECONDS = 60.0


def send(ifname: str) -> None:
    sent = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((ifname, 0))
        for line in sys.stdin:
            if line.strip():
                sock.send(bytes.fromhex(line))
                sent += 1
    print(sent)


def send_vnet(ifname: str) -> None:
    sent = 0
    errors: list[str] = []
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        sock.bind((ifname, 0))
        for line in sys.stdin:
            if line.strip():
                try:
                    sock.send(bytes.fromhex(line))
                    sent += 1
                except OSError as exc:
                    errors.append(str(exc))
    print(json.dumps({"sent": sent, "errors": errors[:3]}))


def capture(ifname: str, seconds: float, marker: bytes) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.bind((ifname, ETH_P_ALL))
        print("ready", flush=True)
        end = time.monotonic() + min(seconds, MAX_SECONDS)
        while (left := end - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            data, ancillary, _flags, _peer = sock.recvmsg(70_000, 256)
            if marker not in data:
                continue
            tag = None
            for level, kind, aux in ancillary:
                if level == SOL_PACKET and kind == PACKET_AUXDATA:
                    status, _len, _snap, _mac, _net, tci, tpid = struct.unpack_from("IIIHHHH", aux)
                    if status & TP_STATUS_VLAN_VALID:
                        tag = [tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100, tci]
            print(json.dumps({"tag": tag, "frame": data.hex()}), flush=True)


def main() -> None:
    if sys.argv[1] == "send":
        send(sys.argv[2])
    elif sys.argv[1] == "send-vnet":
        send_vnet(sys.argv[2])
    else:
        capture(sys.argv[2], float(sys.argv[3]), sys.argv[4].encode())


if __name__ == "__main__":
    main()
