"""Specs of many flows, for the lab test and the bench of specs at scale: flows that match
addresses the lab never uses, so the lab's own traffic keeps the default link, whose spec
stays as it is (its queue and counters must carry over a reload of the flows)."""

from __future__ import annotations

import re
from typing import Any

#: What the supervisor logs once both workers have a timed spec in force (apply_timing).
IN_FORCE = re.compile(r"spec from (\w+) \((\d+) flows\) in force in ([0-9.]+) s")


def many_flows(count: int, default: dict[str, Any], variant: int = 0) -> dict[str, Any]:
    """A spec of `count` flows on 198.19.0.0/16 (outside the lab's 198.18.0.0/16), each its
    own address, UDP port and latency; `variant` shifts every flow's latency, so that a new
    variant changes every flow's link."""
    flows = [
        {
            "label": f"f{i}",
            "flow": {
                "ip": f"198.19.{i // 256 % 256}.{i % 256}",
                "protocol": "udp",
                "port_min": 1024 + i,
                "port_max": 1024 + i,
            },
            "link": {
                "ingress": {"latency": 1 + (i + variant) % 50, "rate": "10mbit"},
                "egress": {"latency": 1 + (i + variant) % 50},
            },
        }
        for i in range(count)
    ]
    return {"default_link": default, "flows": flows}


def in_force_seconds(log_text: str, source: str) -> list[float]:
    """Every timed change from `source` in the engine's log, in seconds."""
    return [float(m[3]) for m in IN_FORCE.finditer(log_text) if m[1] == source]
