"""The connection faults that hold packets back rather than drop them: `slow_close` (a TCP
FIN held T ms before it is forwarded) and `stall` (once per connection, at a random point, its
packets held T ms, then released in order: a handover).

A link decides on a connection's first packet after these faults were set (its `HoldState`,
kept on the connection table's entry), marks each of its packets at arrival with how much
later than due the fault wants it to leave (`arrival`), and when the packet is scheduled past
the serialiser, `held_release` moves its release on by that much, and never before a held
packet of its connection that came earlier: a connection's order is kept, other connections
pass. Pure code: times are handed in, draws come from the link (its `Random`, or its seed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.core.connections import Connection
from engine.core.frames import ETH_P_IP, ETH_P_IPV6, PROTO_TCP, VNET_HDR_LEN, l3_offset
from engine.core.packet import Packet
from engine.model.fates import HELD
from engine.model.faults import SlowClose, Stall

#: With a seed, each decision draws from the connection's first packet's key and its salt
#: (blackhole's toxicity has a salt of its own: the faults' draws are independent).
SLOW_CLOSE_SALT = 0xBB67AE8584CAA73B
STALL_SALT = 0x3C6EF372FE94F82B
STALL_POINT_SALT = 0xA54FF53A5F1D36F1
TCP_FIN = 0x01
_NEVER = float("inf")

#: A uniform draw in [0, 1) for the packet (a new connection's first), with this salt.
Draw = Callable[[Packet, int], float]


def tcp_fin(frame: bytes) -> bool:
    """Whether the frame (vnet header on) is a TCP segment with FIN set (an IPv6 one only
    without extension headers, as the kernel's own TCP sends it)."""
    size = len(frame)
    if size < VNET_HDR_LEN + 14:
        return False
    ethertype, l3 = l3_offset(frame, VNET_HDR_LEN)
    if ethertype == ETH_P_IP and size >= l3 + 20:
        if frame[l3 + 9] != PROTO_TCP or (frame[l3 + 6] & 0x1F) | frame[l3 + 7]:
            return False  # (a fragment after the first has no TCP header)
        l4 = l3 + (frame[l3] & 0x0F) * 4
    elif ethertype == ETH_P_IPV6 and size >= l3 + 40 and frame[l3 + 6] == PROTO_TCP:
        l4 = l3 + 40
    else:
        return False
    return size > l4 + 13 and bool(frame[l4 + 13] & TCP_FIN)


@dataclass(slots=True)
class HoldState:
    """What the hold faults decided for one connection (in one direction's link)."""

    #: The settings it was decided under (`HoldFaults.generation`): a change decides anew.
    generation: int
    #: Whether `slow_close` takes its FIN.
    slow_close: bool
    #: The stall's point: the arrival time and the bytes carried (before a packet) at or past
    #: which it starts; inf for a connection the stall leaves alone.
    stall_at: float
    stall_bytes: float
    #: When its stall, once started, ends (-inf: not started yet).
    stall_end: float = -_NEVER
    #: The latest release of a held packet of it: nothing of it leaves before.
    floor: float = -_NEVER


class HoldFaults:
    """A link's `slow_close` and `stall` settings, and what they decide per connection."""

    def __init__(self) -> None:
        self.slow_close: SlowClose | None = None
        self.stall: Stall | None = None
        self.generation = 0

    def configure(self, slow_close: SlowClose | None, stall: Stall | None) -> None:
        """New settings; a change has every connection decided anew at its next packet."""
        if slow_close != self.slow_close or stall != self.stall:
            self.slow_close, self.stall = slow_close, stall
            self.generation += 1

    @property
    def active(self) -> bool:
        return self.slow_close is not None or self.stall is not None

    def arrival(self, packet: Packet, connection: Connection, draw: Draw) -> None:
        """Mark a packet of `connection` (its bytes counted, this packet's too) with its hold."""
        state = connection.hold
        if state is None or state.generation != self.generation:
            state = connection.hold = self._decide(packet, connection, draw)
        untouched = state.stall_at == state.stall_bytes == _NEVER and state.stall_end == -_NEVER
        if untouched and not state.slow_close:
            return  # a connection these faults leave alone
        now = packet.arrival
        hold = 0.0
        stall = self.stall
        if stall is not None:
            if state.stall_end == -_NEVER and (
                now >= state.stall_at or connection.bytes - packet.l2_bytes >= state.stall_bytes
            ):
                state.stall_end = now + stall.delay_ms / 1000.0  # once: the point is passed
                state.stall_at = state.stall_bytes = _NEVER
            if now < state.stall_end:
                hold = state.stall_end - now
        slow_close = self.slow_close
        if state.slow_close and slow_close is not None and tcp_fin(packet.frame):
            hold += slow_close.delay_ms / 1000.0
        packet.hold_by = state
        packet.hold = hold

    def _decide(self, packet: Packet, connection: Connection, draw: Draw) -> HoldState:
        """A connection's fates under these settings, drawn once (from its packet now)."""
        slow_close, stall = self.slow_close, self.stall
        closes = slow_close is not None and toxic_draw(packet, draw, SLOW_CLOSE_SALT,
                                                   slow_close.toxicity)  # fmt: skip
        stall_at = stall_bytes = _NEVER
        if stall is not None and toxic_draw(packet, draw, STALL_SALT, stall.toxicity):
            point = draw(packet, STALL_POINT_SALT)
            if stall.within_s is not None:
                stall_at = packet.arrival + point * stall.within_s
            if stall.within_bytes is not None:
                stall_bytes = connection.bytes - packet.l2_bytes + point * stall.within_bytes
        return HoldState(self.generation, closes, stall_at, stall_bytes)


def toxic_draw(packet: Packet, draw: Draw, salt: int, toxicity: float) -> bool:
    """Whether a fault of this `toxicity` takes the connection (no draw for 0 or 1): every
    connection fault's one rule."""
    if toxicity >= 1.0 or toxicity <= 0.0:
        return toxicity >= 1.0
    return draw(packet, salt) < toxicity


def held_release(packet: Packet, release: float) -> tuple[float, bool]:
    """A packet's release with its hold (`packet.hold_by` set), and whether it was held
    (later than `release`): its hold added, and not before what its connection held earlier."""
    state = packet.hold_by
    assert state is not None
    held = release + packet.hold
    if held < state.floor:
        held = state.floor
    if held <= release:
        return release, False
    packet.marks |= HELD
    state.floor = held
    return held, True
