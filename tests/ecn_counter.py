"""Counting ECN codepoints on a wire, with scapy, in a lab namespace:

`python -m tests.ecn_counter IFNAME SECONDS` prints JSON: how many IPv4 TCP packets arrived on
IFNAME within SECONDS with each codepoint (not_ect, ect1, ect0, ce). Bounded by SECONDS.
"""

from __future__ import annotations

import json
import sys

from scapy.layers.inet import IP, TCP
from scapy.sendrecv import sniff

NAMES = ("not_ect", "ect1", "ect0", "ce")
MAX_SECONDS = 60.0


def main() -> None:
    ifname, seconds = sys.argv[1], min(float(sys.argv[2]), MAX_SECONDS)
    counts = dict.fromkeys(NAMES, 0)

    def count(packet: object) -> None:
        if IP in packet and TCP in packet:  # type: ignore[operator]
            counts[NAMES[packet[IP].tos & 3]] += 1  # type: ignore[index]

    sniff(iface=ifname, filter="tcp", prn=count, store=False, timeout=seconds)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
