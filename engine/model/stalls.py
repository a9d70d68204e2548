"""Traffic that stands still after an extreme setting, and why (issue 35, item 12).

A TCP sender that lost a packet's retransmissions waits twice as long before each next try
(RFC 6298, up to 60 s or more; Linux caps the wait at 120 s), so after a blocked link, a loss of
50 % or more or a delay of seconds, a flow may carry nothing for a minute or two after sane
values are back, though the link would take it. The TUI says so; the demo restarts its flows.
Pure: times are handed in (a worker's stats clock), so tests feed samples.
"""

from __future__ import annotations

from engine.model.spec import LinkSpec
from engine.model.units import format_duration_ms, format_ratio

#: From this loss up, or this much latency + jitter, TCP's retransmissions mostly fail too.
EXTREME_LOSS = 0.5
EXTREME_DELAY_MS = 1000.0
#: Below this many packets a second a direction counts as standing still.
STILL_PACKETS = 5.0
#: How long after the extreme setting ended a stand-still is put down to it: TCP's longest
#: wait between retries (120 s on Linux) and a margin.
REMEMBERED = 150.0


def extreme(link: LinkSpec) -> str | None:
    """What makes a link's setting one that TCP backs off from, in a few words; None if sane."""
    if link.rate <= 0:
        return "the block"
    if link.loss >= EXTREME_LOSS:
        return f"{format_ratio(link.loss)} loss"
    delay = link.latency + link.jitter
    if delay >= EXTREME_DELAY_MS:
        return f"{format_duration_ms(delay)} delay"
    outage = link.outage
    if outage is not None and outage.down is not None and outage.down >= EXTREME_DELAY_MS:
        return f"{format_duration_ms(outage.down)} outages"
    return None


class StallWatch:
    """One direction: feed it the settings in force (`settings`) and its traffic (`still`);
    `still` names the extreme setting a stand-still follows, while it does."""

    def __init__(self) -> None:
        self.cause: str | None = None
        #: When sane settings came back after `cause` (None while it is in force).
        self.ended_at: float | None = None

    def settings(self, link: LinkSpec, at: float, other: LinkSpec | None = None) -> None:
        """The settings in force from `at`: this direction's link, and the other direction's
        (TCP stalls both ways when either way is cut: its ACKs or its data go)."""
        cause = extreme(link)
        if cause is None and other is not None:
            across = extreme(other)
            cause = f"the other direction's {across.removeprefix('the ')}" if across else None
        if cause is not None:
            self.cause, self.ended_at = cause, None
        elif self.cause is not None and self.ended_at is None:
            self.ended_at = at

    def still(self, at: float, packets_per_second: float) -> str | None:
        """The extreme setting the direction's stand-still at `at` follows, or None: while it
        is in force (the link itself stops the traffic then), when traffic moves, or long
        after it ended."""
        if self.cause is None or self.ended_at is None:
            return None
        if at - self.ended_at > REMEMBERED:
            self.cause = self.ended_at = None
            return None
        return self.cause if packets_per_second < STILL_PACKETS else None


def stall_note(cause: str) -> str:
    """The line a user reads beside a standing-still direction."""
    return (
        f"~0 pkt/s since {cause}: TCP backs off (each retry waits twice as long, up to 2 min) "
        "and resumes by itself; new connections start at once"
    )
