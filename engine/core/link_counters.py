"""What a link counts (packets and bytes in and out, each kind of drop, what impairments did)
and, while a capture runs, where it notes each frame's fate: the record every part of a link
writes to (see link.py)."""

from __future__ import annotations

from engine.core.fates import FateLog
from engine.model.fates import MALFORMED
from engine.model.stats import Drops


class LinkCounters:
    """The cumulative counters of a link, which only grow. `version` tells whether any of them
    moved: their sum, which changes whenever one does, so no list of them is kept in step by
    hand. The parts of a link are mixed into one object with these (see link.py): a counter
    is one attribute away on the per-packet path, never two."""

    #: While a capture runs, where each frame's fate is noted (see fates.py), and the link's
    #: label for the records.
    fates: FateLog | None
    label: str

    def __init__(self) -> None:
        self.packets_in = 0
        self.bytes_in = 0
        self.packets_out = 0
        self.bytes_out = 0
        #: Wire packets that reached the impairments (through the queue and the rate
        #: limiter, or straight in on a link without them): the base of the loss share.
        self.past_queue = 0
        self.drop_loss = 0
        self.drop_queue_full = 0
        self.drop_blocked = 0
        self.drop_held_full = 0
        self.drop_flushed = 0
        self.drop_malformed = 0
        self.drop_aqm = 0
        self.drop_outage = 0
        self.drop_blackholed = 0
        self.drop_reset = 0
        #: Frames a TCP fault made (RSTs and FINs), both ways (engine/core/tcp_faults.py).
        self.injected = 0
        #: Connections a full connection table could not take (they pass unharmed).
        self.connections_untracked = 0
        self.ecn_marked = 0
        self.duplicated = 0
        self.corrupted = 0
        self.reordered = 0
        #: Wire packets a `slow_close` or `stall` held (forwarded later than due).
        self.held = 0
        self.fates = None
        self.label = "default"

    @property
    def version(self) -> int:
        """A number that changes whenever any counter does (they only grow)."""
        return (
            self.packets_in + self.bytes_in + self.packets_out + self.bytes_out + self.past_queue
            + self.drop_loss + self.drop_queue_full + self.drop_blocked + self.drop_held_full
            + self.drop_flushed + self.drop_malformed + self.drop_aqm + self.drop_outage
            + self.drop_blackholed + self.connections_untracked + self.drop_reset + self.injected
            + self.ecn_marked + self.duplicated + self.corrupted + self.reordered + self.held
        )  # fmt: skip

    def drops(self) -> Drops:
        return Drops(
            loss=self.drop_loss,
            queue_full=self.drop_queue_full,
            blocked=self.drop_blocked,
            held_full=self.drop_held_full,
            flushed=self.drop_flushed,
            malformed=self.drop_malformed,
            aqm=self.drop_aqm,
            outage=self.drop_outage,
            blackholed=self.drop_blackholed,
            reset=self.drop_reset,
        )

    def pass_through(self, wire_packets: int, l2_bytes: int) -> None:
        """Count a packet that left at once: what `offer` and `advance` would have done with it
        on a transparent, idle link, without holding a copy."""
        self.packets_in += wire_packets
        self.bytes_in += l2_bytes
        self.past_queue += wire_packets
        self.packets_out += wire_packets
        self.bytes_out += l2_bytes

    def refuse_malformed(self, wire_packets: int, l2_bytes: int, frame: bytes = b"",
                         now: float = 0.0) -> None:  # fmt: skip
        """Count a frame dropped whole for being malformed (see frames.plausible_gso)."""
        self.packets_in += wire_packets
        self.bytes_in += l2_bytes
        self.drop_malformed += wire_packets
        if self.fates is not None:
            self.fates.note(frame, now, MALFORMED, self.label)
