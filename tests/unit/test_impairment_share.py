"""The loss a link's impairments caused, as a share of what reached them (issue 35, item 4): the
queue drops before loss applies, so loss over all arrivals understates the loss set whenever
the queue drops too. Virtual time, seeded: the same packets every run. And (item 12) when a
direction's stand-still is put down to an extreme setting, on fed samples."""

from __future__ import annotations

import math
import random

from engine.core.delay_line import Released
from engine.core.link import Link
from engine.core.packet import Packet
from engine.model.spec import LinkSpec
from engine.model.stalls import REMEMBERED, StallWatch, extreme

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


def test_a_stand_still_is_put_down_to_an_extreme_setting_only_after_it_and_for_a_while() -> None:
    """engine/model/stalls.py, on fed samples: what counts as extreme, and when it explains
    a direction that carries next to nothing."""
    sane = LinkSpec(rate=20_000_000, latency=20)
    assert extreme(sane) is None
    assert extreme(LinkSpec(rate=0)) == "the block"
    assert extreme(LinkSpec(loss=0.5)) == "50 % loss"
    assert extreme(LinkSpec(latency=900, jitter=100)) == "1 s delay"
    watch = StallWatch()
    watch.settings(sane, 0.0)
    assert watch.still(1.0, 0.0) is None  # idle, never extreme: nothing to say
    watch.settings(LinkSpec(rate=0), 2.0)
    assert watch.still(3.0, 0.0) is None  # the block itself stops it
    watch.settings(sane, 10.0)
    assert watch.still(11.0, 0.0) == "the block"
    assert watch.still(12.0, 500.0) is None  # traffic moves
    assert watch.still(10.0 + REMEMBERED + 1, 0.0) is None  # long after: not the block's doing
    assert watch.still(10.0 + REMEMBERED + 2, 0.0) is None


def test_a_stand_still_names_the_other_directions_setting_not_an_old_one() -> None:
    """Download 100 % loss after an earlier block: the Upload panel said "since the block"
    (its own old cause) while the download loss, still in force, was what stopped TCP. Either
    way's setting stalls both ways; while it is in force nothing is said (the panel shows it),
    after it the note names it."""
    sane, lossy = LinkSpec(rate=20_000_000, latency=20), LinkSpec(loss=1.0)
    upload = StallWatch()
    upload.settings(LinkSpec(rate=0), 0.0, sane)  # a block of its own first
    upload.settings(sane, 5.0, sane)
    upload.settings(sane, 20.0, lossy)  # then the other direction's loss of 100 %
    assert upload.still(21.0, 0.0) is None  # in force: the download panel says 100 %
    upload.settings(sane, 30.0, sane)
    assert upload.still(31.0, 0.0) == "the other direction's 100 % loss"
