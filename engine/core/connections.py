"""A link's connection table, for its connection faults (`blackhole`): each TCP or UDP
connection it sees, keyed by its 5-tuple read the same in either direction, with when it was
first and last seen, the bytes it carried and whether its fault applies to it.

Bounded: at most `size` connections, and one idle for `idle` seconds is forgotten (a
connection seen again later starts afresh). A new connection that finds the table full of
live ones is not tracked and passes unharmed, counted, rather than pushing out a connection
whose fault is under way. Pure code: time is handed in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.core.frames import PROTO_TCP, PROTO_UDP, flow_key

if TYPE_CHECKING:
    from engine.core.hold_faults import HoldState

#: Connections a link tracks at most, and how long one may stay idle before it is forgotten.
MAX_CONNECTIONS = 65_536
IDLE_EXPIRY = 120.0

#: IP version, protocol, then the lower (address, port) of the two ends and the higher.
ConnectionKey = tuple[int, int, int, int, int, int]


def connection_key(frame: bytes) -> ConnectionKey | None:
    """The frame's connection, the same for both directions' packets; None for what is not
    TCP or UDP (nor a fragment after the first, which has no ports)."""
    version, src, dst, protocol, sport, dport = flow_key(frame)
    if protocol not in (PROTO_TCP, PROTO_UDP) or version == 0 or sport == dport == 0:
        return None
    if (src, sport) <= (dst, dport):
        return version, protocol, src, sport, dst, dport
    return version, protocol, dst, dport, src, sport


@dataclass(slots=True)
class Connection:
    """What the table knows of one connection."""

    first_seen: float
    last_seen: float
    bytes: int
    #: Whether the fault applies to it (the link's `toxicity`, decided once when first seen).
    toxic: bool
    #: What `slow_close` and `stall` decided for it (engine/core/hold_faults.py), if set.
    hold: HoldState | None = None


class ConnectionTable:
    """The connections one link sees, least recently seen first."""

    def __init__(self, size: int = MAX_CONNECTIONS, idle: float = IDLE_EXPIRY) -> None:
        self.size = size
        self.idle = idle
        self._table: OrderedDict[ConnectionKey, Connection] = OrderedDict()
        #: Connections forgotten for being idle, and those not taken for the table being full.
        self.expired = 0
        self.untracked = 0

    def __len__(self) -> int:
        return len(self._table)

    def see(self, key: ConnectionKey, now: float, size: int,
            toxic: Callable[[], bool]) -> Connection | None:  # fmt: skip
        """The connection of a packet of `size` bytes seen at `now`, its bytes counted (so
        `bytes - size` is what it carried before); a new one is decided `toxic` once. None if
        it is new and the table is full."""
        table = self._table
        connection = table.get(key)
        if connection is not None:
            connection.bytes += size
            if now > connection.last_seen:
                connection.last_seen = now
            table.move_to_end(key)
            return connection
        self._expire(now)
        if len(table) >= self.size:
            self.untracked += 1
            return None
        connection = table[key] = self._new(now, size, toxic)
        return connection

    def _new(self, now: float, size: int, toxic: Callable[[], bool]) -> Connection:
        """A connection first seen now (a table of a kind of its own may keep more)."""
        return Connection(now, now, size, toxic())

    def _expire(self, now: float) -> None:
        """Forget the connections idle for longer than `idle` (the oldest come first)."""
        table = self._table
        horizon = now - self.idle
        while table:
            key, connection = next(iter(table.items()))
            if connection.last_seen >= horizon:
                return
            del table[key]
            self.expired += 1
