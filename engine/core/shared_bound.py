"""What all of one worker's links together may hold, beside what each may: a spec of 10,000
flows, each with a `seed` or a connection fault, would otherwise let each link fill its own
tables (some 42 MiB of seeded identities, 20 MiB of connections) and the worker grow without
a bound. A table takes an entry from its bound before it keeps a new one, gives it back when
it forgets one, and gives back what it held when it is dropped (a link removed, a fault or
seed switched off). Each worker is a process of its own, so the module's bounds are its own.
"""

from __future__ import annotations

import weakref
from collections.abc import Sized

#: Connections all of a worker's connection tables hold at most (each at most 65,536), and
#: the packet identities all its seeded links remember (each at most 2**18).
WORKER_CONNECTIONS = 1 << 17
WORKER_IDENTITIES = 1 << 18


class SharedBound:
    """A count of entries that many tables share, at most `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self) -> bool:
        """One entry more, if the bound allows it."""
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def give(self, count: int = 1) -> None:
        self.used = max(0, self.used - count)

    def held_by(self, owner: object, entries: Sized) -> None:
        """`entries` (the owner's container) are given back when `owner` is collected."""
        weakref.finalize(owner, _give_back, self, entries)


def _give_back(bound: SharedBound, entries: Sized) -> None:
    bound.give(len(entries))


#: This worker's bounds (tests make their own).
CONNECTIONS = SharedBound(WORKER_CONNECTIONS)
IDENTITIES = SharedBound(WORKER_IDENTITIES)
