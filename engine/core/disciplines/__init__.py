"""Active queue management for the queue in front of a link's rate limiter: CoDel, FQ-CoDel and
PIE (tail and head drop are plain FIFOs, which the link keeps itself). Pure code in virtual
time: every decision takes the time it is made at."""

from __future__ import annotations

import random

from engine.core.disciplines.base import Discipline
from engine.core.disciplines.codel import CodelQueue
from engine.core.disciplines.fq_codel import FqCodelQueue
from engine.core.disciplines.pie import PieQueue
from engine.model.impairments import QueueLimit


def make_discipline(queue: QueueLimit, rng: random.Random) -> Discipline | None:
    """The AQM a queue's spec names, or None for a FIFO (tail or head drop)."""
    if queue.discipline == "codel":
        return CodelQueue(queue)
    if queue.discipline == "fq_codel":
        return FqCodelQueue(queue, rng)
    if queue.discipline == "pie":
        return PieQueue(queue, rng)
    return None


__all__ = ["Discipline", "make_discipline"]
