"""The queue disciplines in front of a link's rate limiter: the plain FIFOs (tail and head
drop) and active queue management (CoDel, FQ-CoDel and PIE). Pure code in virtual time: every
decision takes the time it is made at."""

from __future__ import annotations

import random

from engine.core.disciplines.base import Discipline
from engine.core.disciplines.codel import CodelQueue
from engine.core.disciplines.fifo import HeadDropQueue, TailDropQueue
from engine.core.disciplines.fq_codel import FqCodelQueue
from engine.core.disciplines.pie import PieQueue
from engine.model.impairments import QueueLimit


def make_discipline(queue: QueueLimit, rng: random.Random) -> Discipline:
    """The discipline a queue's spec names."""
    if queue.discipline == "codel":
        return CodelQueue(queue)
    if queue.discipline == "fq_codel":
        return FqCodelQueue(queue, rng)
    if queue.discipline == "pie":
        return PieQueue(queue, rng)
    if queue.discipline == "head_drop":
        return HeadDropQueue(queue)
    return TailDropQueue(queue)


__all__ = ["Discipline", "make_discipline"]
