"""The floor for any Python forwarder: two processes that move frames on with the engine's
sockets and system calls and nothing else (no pipeline, no control, no stats). Two ways, as
the engine has them: one frame per `recvmmsg` (with its ancillary data, which the engine
reads for VLAN tags) and `send`, or with `--batch` up to mmsg.BATCH frames per `recvmmsg`
and `sendmmsg` (`engine.kernel.mmsg`).

`make bench` measures it beside the engine (the ping RTT one frame at a time, as the engine
forwards sparse frames; TCP in batches, as it forwards bulk), so that the engine's cost is
split into what the language and the kernel path take and what linkshaper adds. Run in the
lab's box: `python -m bench.bare_forwarder OUTER INNER SECONDS [--batch]`; it stops by itself
after SECONDS.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket

from engine.core.frames import mark_partial_checksum
from engine.kernel.afpacket import open_receiver, open_sender
from engine.kernel.mmsg import SLOT, FrameBatch


def forward_frames(rx: socket.socket, tx: socket.socket) -> None:
    batch = FrameBatch()  # its first slot
    buffer, view, sizes = batch.buffer, batch.view, batch.sizes
    while True:
        try:
            batch.receive(rx, 0, 1)
            size = sizes[0]
        except BlockingIOError:  # the receiver's read timeout: nothing came
            continue
        frame = view[:size]
        if buffer[1]:
            mark_partial_checksum(frame)
        try:
            tx.send(frame)
        except OSError:
            continue


def forward_batches(rx: socket.socket, tx: socket.socket) -> None:
    batch = FrameBatch()
    buffer = batch.buffer
    while True:
        try:
            count = batch.receive(rx)
        except BlockingIOError:
            continue
        for index in range(count):
            if buffer[index * SLOT + 1]:
                mark_partial_checksum(batch.frame(index))
        sent = 0
        while sent < count:
            try:
                sent += batch.send(tx, sent, count)
            except OSError:
                sent += 1


def forward(rx_ifname: str, tx_ifname: str, batched: bool) -> None:
    rx = open_receiver(rx_ifname)
    tx = open_sender(tx_ifname)
    rx.setblocking(True)
    (forward_batches if batched else forward_frames)(rx, tx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outer")
    parser.add_argument("inner")
    parser.add_argument("seconds", type=float)
    parser.add_argument("--batch", action="store_true")
    args = parser.parse_args()
    signal.alarm(int(args.seconds) + 1)  # inherited by neither fork nor exec: set in both
    if os.fork() == 0:
        signal.alarm(int(args.seconds) + 1)
        forward(args.inner, args.outer, args.batch)
    else:
        forward(args.outer, args.inner, args.batch)


if __name__ == "__main__":
    main()
