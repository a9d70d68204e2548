"""A link's connection table, for its connection faults (`blackhole`): each TCP or UDP
connection it sees, keyed by its 5-tuple read the same in either direction, with when it was
first and last seen, the bytes it carried and whether its fault applies to it.

Bounded: at most `size` connections, and one idle for `idle` seconds is forgotten (a
connection seen again later starts afresh). A new connection that finds the table full of
live ones is not tracked and passes unharmed, counted, rather than pushing out a connection
whose fault is under way. Pure code: time is handed in.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.core.frames import PROTO_TCP, PROTO_UDP, VNET_HDR_LEN, flow_key
from engine.core.shared_bound import CONNECTIONS, SharedBound

if TYPE_CHECKING:
    from engine.core.hold_faults import HoldState

#: Connections a link tracks at most, and how long one may stay idle before it is forgotten.
MAX_CONNECTIONS = 65_536
IDLE_EXPIRY = 120.0

#: IP version, protocol, then the lower (address, port) of the two ends and the higher.
ConnectionKey = tuple[int, int, int, int, int, int]


#: An untagged IPv4 frame with a 20-byte header: the ethertype and first byte of IP, where.
_PLAIN_IPV4 = b"\x08\x00\x45"
_ETHERTYPE_AT = VNET_HDR_LEN + 12
#: Its fragment field, protocol, addresses and ports in one read, from the ethertype on.
_PLAIN_IPV4_FIELDS = struct.Struct("!8xHxB2xIIHH")
_PLAIN_IPV4_SIZE = _ETHERTYPE_AT + _PLAIN_IPV4_FIELDS.size


def connection_key(frame: bytes) -> ConnectionKey | None:
    """The frame's connection, the same for both directions' packets; None for what is not
    TCP or UDP (nor a fragment after the first, which has no ports). The common frame
    (untagged IPv4, no options) is read in one struct call: this runs for every packet of a
    link with a fault, and `flow_key`'s general path cost as much as the table's work."""
    if len(frame) >= _PLAIN_IPV4_SIZE and frame[_ETHERTYPE_AT : _ETHERTYPE_AT + 3] == _PLAIN_IPV4:
        fragment, protocol, src, dst, sport, dport = _PLAIN_IPV4_FIELDS.unpack_from(
            frame, _ETHERTYPE_AT
        )
        if fragment & 0x1FFF or (protocol != PROTO_TCP and protocol != PROTO_UDP):
            return None
        if sport == dport == 0:
            return None
        if src < dst or (src == dst and sport <= dport):
            return 4, protocol, src, sport, dst, dport
        return 4, protocol, dst, dport, src, sport
    return _connection_key(frame)


def _connection_key(frame: bytes) -> ConnectionKey | None:
    """`connection_key` of any frame, through `flow_key`."""
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

    def __init__(self, size: int = MAX_CONNECTIONS, idle: float = IDLE_EXPIRY,
                 shared: SharedBound = CONNECTIONS) -> None:  # fmt: skip
        self.size = size
        self.idle = idle
        self._table: OrderedDict[ConnectionKey, Connection] = OrderedDict()
        #: What all of the worker's tables may hold together (engine/core/shared_bound.py).
        self._shared = shared
        shared.held_by(self, self._table)
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
        if len(table) >= self.size or not self._shared.take():
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
            self._shared.give()
            self.expired += 1
