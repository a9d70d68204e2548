"""Send raw Ethernet frames out of an interface, one per line of hex on stdin, for tests that
must put frames on a wire that no socket of a host's own stack would send (malformed ones).
Prints how many the kernel took."""

from __future__ import annotations

import socket
import sys


def main() -> None:
    ifname = sys.argv[1]
    sent = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((ifname, 0))
        for line in sys.stdin:
            if line.strip():
                sock.send(bytes.fromhex(line))
                sent += 1
    print(sent)


if __name__ == "__main__":
    main()
