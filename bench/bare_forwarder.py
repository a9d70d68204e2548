"""The floor for any Python forwarder: two processes that block in `recv_into` and `send` each
frame on, with the engine's sockets and nothing else (no pipeline, no control, no stats).

`make bench` measures it beside the engine, so that the engine's cost is split into what the
language and the kernel path take and what linkshaper adds. Run in the lab's box:
`python -m bench.bare_forwarder OUTER INNER SECONDS`; it stops by itself after SECONDS.
"""

from __future__ import annotations

import os
import signal
import sys

from engine.afpacket import open_receiver, open_sender
from engine.frames import mark_partial_checksum


def forward(rx_ifname: str, tx_ifname: str) -> None:
    rx = open_receiver(rx_ifname)
    tx = open_sender(tx_ifname)
    rx.setblocking(True)
    buffer = bytearray(70_000)
    view = memoryview(buffer)
    while True:
        try:
            size = rx.recv_into(buffer)
        except BlockingIOError:  # the receiver's read timeout: nothing came
            continue
        frame = view[:size]
        if buffer[1]:
            mark_partial_checksum(frame)
        try:
            tx.send(frame)
        except OSError:
            continue


def main() -> None:
    outer, inner, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    signal.alarm(int(seconds) + 1)  # inherited by neither fork nor exec: set in both
    if os.fork() == 0:
        signal.alarm(int(seconds) + 1)
        forward(inner, outer)
    else:
        forward(outer, inner)


if __name__ == "__main__":
    main()
