"""The loss a link's impairments caused, as a share of what reached them (issue 35, item 4): the
queue drops before loss applies, so loss over all arrivals understates the loss set whenever
the queue drops too. Virtual time, seeded: the same packets every run."""

from __future__ import annotations

import math
import random

from engine.core.delay_line import Released
from engine.core.link import Link
from engine.core.packet import Packet
from engine.model.spec import LinkSpec

RATE = 1_000_000  # bit/s: 1000-byte frames take 8.192 ms each, some 122 a second
SET_LOSS = 0.10


def test_loss_over_what_reached_the_impairments_is_the_loss_set_while_the_queue_drops() -> None:
    spec = LinkSpec.model_validate({"rate": RATE, "loss": SET_LOSS, "queue": {"packets": 20}})
    link = Link(spec, random.Random(35), now=0.0)
    out: list[Released] = []
    arrivals = 24_000  # 400 a second for 60 s: over three times what the rate takes
    for i in range(arrivals):
        at = i / 400
        link.offer(Packet(i.to_bytes(4, "big"), at, 1, 1000, True))
        link.advance(at, out)
    link.advance(1e6, out)
    stats = link.stats()
    reached = stats.past_queue
    assert stats.drops.queue_full > arrivals / 2  # the queue drops most of what comes
    assert reached == stats.packets_in - stats.drops.queue_full
    assert reached == stats.packets_out + stats.drops.loss
    # Binomial: z = 4 (a seeded run, but the bound is stated, not fitted to the seed).
    tolerance = 4 * math.sqrt(SET_LOSS * (1 - SET_LOSS) / reached)
    assert abs(stats.drops.loss / reached - SET_LOSS) <= tolerance
    # Over all arrivals the same drops read as under a third of the loss set.
    assert stats.drops.loss / stats.packets_in < SET_LOSS / 3
