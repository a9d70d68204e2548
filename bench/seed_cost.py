"""What a link's `seed` costs per packet (`python -m bench.seed_cost`): one direction's
pipeline driven in virtual time (no socket, no clock in its path) with distinct 1000-byte UDP
frames through a shaped link (10 ms, 5 ms of jitter, 1 % loss), CPU nanoseconds per frame
(the process's CPU time, so that other load on the machine counts less than in wall time).

`--seeded` measures the same with a `seed` set. Without a seed the path is meant to cost what
it did before seeds existed: run this file from two trees in turn (this one, and a copy of
the one before the change) and compare the medians printed, in one sitting."""

from __future__ import annotations

import argparse
import json
import statistics
import time

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from engine.core.frames import PLAIN_VNET_HDR
from engine.core.pipeline import DirectionPipeline
from engine.model.spec import Spec

FRAMES = 50_000
#: Virtual time between frames: 100,000 frames a second.
GAP = 1e-5


def frames(count: int) -> list[bytes]:
    """Distinct frames (a number in each payload), as a sender of numbered datagrams makes."""
    head = bytes(Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=4000, dport=5001))
    padding = bytes(1000 - len(head) - 4)
    return [PLAIN_VNET_HDR + head + padding + i.to_bytes(4, "big") for i in range(count)]


def cost(seeded: bool, batch: list[bytes]) -> float:
    """CPU ns per frame through the pipeline, releases included."""
    link: dict[str, object] = {"latency": 10, "jitter": 5, "loss": 0.01}
    if seeded:
        link["seed"] = 42
    pipeline = DirectionPipeline(Spec.model_validate({"egress": link}), "egress", 0.0, seed=1)
    start = time.process_time()
    now = 0.0
    for index, frame in enumerate(batch):
        now = index * GAP
        pipeline.forward(frame, now)
        if index % 64 == 0:
            pipeline.release(now)
    pipeline.release(now + 1.0)
    return (time.process_time() - start) / len(batch) * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seeded", action="store_true", help="with a seed set on the link")
    args = parser.parse_args()
    batch = frames(FRAMES)
    runs = [cost(args.seeded, batch) for _ in range(args.runs)]
    print(json.dumps({"seeded": args.seeded, "ns_per_frame": statistics.median(runs),
                      "runs": [round(r) for r in runs]}))  # fmt: skip


if __name__ == "__main__":
    main()
