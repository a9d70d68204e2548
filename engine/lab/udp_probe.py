"""A small UDP test client for the lab: numbered datagrams, counted on arrival.

`send HOST PORT --count N --pps R [--tos T]` sends datagrams 0..N-1 paced at R per second
(bounded by count and by time; with `--fixed`, without their send time, so every run sends
the same bytes); `recv PORT` counts what arrives until it has been idle for `--idle`
seconds and prints JSON: received, reordered (arrived after a higher number), duplicates, and
one-way delay quantiles from the send time in each datagram to the kernel's arrival stamp
(with `--each`, every datagram's too).
`echo PORT` answers datagrams; `rtt HOST PORT --count N` measures round trips in ms.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import time

from engine.kernel.afpacket import STAMP_SPACE, arrival_stamp, stamp_arrivals
from engine.protocol.control import finite_float

HEADER = struct.Struct("!Id")
MAX_SECONDS = 120.0
SO_RCVBUFFORCE = 33


def send(
    host: str, port: int, count: int, pps: float, size: int, fixed: bool = False, tos: int = 0
) -> int:
    """With `fixed`, no send time in the datagrams: the same count sends the same bytes on
    every run (what a link's `seed` needs to meet each datagram with the same fate). `tos`: the
    IPv4 TOS byte (or IPv6 traffic class) of each datagram: its low two bits are the ECN field
    (2: ECT(0), which a link may mark CE instead of dropping). For MAX_SECONDS at most; how
    many went."""
    v6 = ":" in host
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    if tos:
        if v6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    padding = b"p" * max(0, size - HEADER.size)
    start = time.monotonic()
    sent = 0
    for seq in range(count):
        due = start + seq / pps
        while (delay := due - time.monotonic()) > 0:
            time.sleep(min(delay, 0.01))
        sock.sendto(HEADER.pack(seq, 0.0 if fixed else time.time()) + padding, (host, port))
        sent += 1
        if time.monotonic() - start > MAX_SECONDS:
            break
    sock.close()
    return sent


def recv(port: int, idle: float, v6: bool, each: bool = False) -> dict[str, object]:
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:  # past net.core.rmem_max (root): a receiver off its core for a second loses nothing
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 * 1024 * 1024)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    stamp_arrivals(sock, True)
    sock.bind(("::" if v6 else "0.0.0.0", port))
    sock.settimeout(30.0)  # the first datagram may take a while
    seen: set[int] = set()
    received = reordered = duplicates = 0
    highest = -1
    delays: list[float] = []  # one way, ms: sender and receiver share this host's clock
    each_delay: dict[int, float] = {}
    each_sent: dict[int, float] = {}
    start = time.monotonic()
    while time.monotonic() - start < MAX_SECONDS:
        try:
            data, ancillary, _flags, _peer = sock.recvmsg(65536, STAMP_SPACE)
        except TimeoutError:
            break
        sock.settimeout(idle)
        seq, sent = HEADER.unpack_from(data)
        # The kernel's arrival stamp, not the time this process got around to reading it.
        arrived = arrival_stamp(ancillary) or time.time()
        delays.append((arrived - sent) * 1000.0)
        if each:
            each_delay[seq] = delays[-1]
            each_sent[seq] = sent
        received += 1
        if seq in seen:
            duplicates += 1
        seen.add(seq)
        if seq < highest:
            reordered += 1
        highest = max(highest, seq)
    sock.close()
    delays.sort()

    def quantile(q: float) -> float:
        return delays[min(len(delays) - 1, int(q * len(delays)))] if delays else 0.0

    result: dict[str, object] = {
        "received": received,
        "reordered": reordered,
        "duplicates": duplicates,
        "highest": highest,
        "delay_p1_ms": quantile(0.01),
        "delay_p50_ms": quantile(0.5),
        "delay_p99_ms": quantile(0.99),
        "delay_max_ms": delays[-1] if delays else 0.0,
    }
    if each:
        result["each_ms"] = each_delay  # datagram number -> its one-way delay
        result["each_sent"] = each_sent  # datagram number -> when it was sent (wall clock)
    return result


def echo(port: int, seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(1.0)
    end = time.monotonic() + min(seconds, MAX_SECONDS)
    while time.monotonic() < end:
        try:
            data, peer = sock.recvfrom(65536)
        except TimeoutError:
            continue
        sock.sendto(data, peer)
    sock.close()


def rtt(host: str, port: int, count: int, interval: float) -> dict[str, float]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    samples: list[float] = []
    for seq in range(count):
        sent = time.monotonic()
        sock.sendto(HEADER.pack(seq, sent), (host, port))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        if HEADER.unpack_from(data)[0] == seq:
            samples.append((time.monotonic() - sent) * 1000)
        time.sleep(interval)
    sock.close()
    if not samples:
        return {"count": 0, "min_ms": -1, "p25_ms": -1, "median_ms": -1}
    samples.sort()
    return {
        "count": len(samples),
        "min_ms": samples[0],
        "p25_ms": samples[(len(samples) - 1) // 4],
        "median_ms": statistics.median(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("send")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--pps", type=finite_float, default=1000)
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--fixed", action="store_true", help="the same bytes on every run")
    p.add_argument("--tos", type=int, default=0, choices=range(256), metavar="0-255",
                   help="the TOS byte (its low two bits the ECN field)")  # fmt: skip
    p.add_argument("--report", action="store_true", help="print how many were sent, as JSON")
    p = sub.add_parser("recv")
    p.add_argument("port", type=int)
    p.add_argument("--idle", type=finite_float, default=1.0)
    p.add_argument("--v6", action="store_true")
    p.add_argument("--each", action="store_true", help="also each datagram's delay")
    p = sub.add_parser("echo")
    p.add_argument("port", type=int)
    p.add_argument("--seconds", type=finite_float, default=30)
    p = sub.add_parser("rtt")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--interval", type=finite_float, default=0.05)
    args = parser.parse_args()
    if args.mode == "send":
        sent = send(args.host, args.port, args.count, args.pps, args.size, args.fixed, args.tos)
        if args.report:
            print(json.dumps({"sent": sent}))
    elif args.mode == "recv":
        print(json.dumps(recv(args.port, args.idle, args.v6, args.each)))
    elif args.mode == "echo":
        echo(args.port, args.seconds)
    else:
        print(json.dumps(rtt(args.host, args.port, args.count, args.interval)))


if __name__ == "__main__":
    main()
