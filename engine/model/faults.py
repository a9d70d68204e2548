"""Connection faults of a LINK: what happens to a connection (a TCP or UDP 5-tuple) once it
has carried so many bytes or lived so long. The model says what a fault means; the link's
connection table (engine/core/connections.py) does it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from engine.model.fields import MAX_SECONDS, ByteCount, Millis, Ratio, Seconds, Strict

#: The longest `after_s` (a week): a fault set further out is a mistake.
MAX_AFTER_S = MAX_SECONDS


class Triggered(Strict):
    """A fault that strikes a connection once it has carried `after_bytes` bytes (Ethernet
    frame bytes, as this link saw them) or lived `after_s` seconds (from its first packet
    this link saw), whichever comes first; `toxicity` is the share of connections affected,
    decided once per connection when it is first seen."""

    after_bytes: ByteCount | None = None
    after_s: Seconds | None = None
    toxicity: Ratio = 1.0

    @model_validator(mode="after")
    def _check_trigger(self) -> Triggered:
        if self.after_bytes is None and self.after_s is None:
            raise ValueError("give after_bytes or after_s (or both)")
        return self

    def struck(self, carried: int, age: float) -> bool:
        """Whether a connection that carried `carried` bytes before this packet and lived
        `age` seconds is past the trigger (the one rule of `blackhole` and `reset`)."""
        return (self.after_bytes is not None and carried >= self.after_bytes) or (
            self.after_s is not None and age >= self.after_s
        )


class Blackhole(Triggered):
    """Past its trigger, a connection's packets are dropped silently from then on (the fate
    `blackholed`): the application sees a hang, then its own timeout."""


class SlowClose(Strict):
    """A TCP FIN is held `delay_ms` before it is forwarded (the fate mark `held`): the peer
    sees the close late, as toxiproxy's `slow_close` does, for any application. What follows
    the FIN on its connection in this direction waits behind it (a connection's order is
    kept); other connections pass. `toxicity` is the share of connections affected, decided
    once per connection when it is first seen."""

    delay_ms: Millis
    toxicity: Ratio = 1.0


class Stall(Strict):
    """Once per connection, at a point drawn uniformly up to `within_bytes` bytes carried or
    `within_s` seconds lived (whichever is reached first when both are given), its packets
    are held `delay_ms` (the fate mark `held`), then released in order: a handover. The stall
    starts with the first packet at or past the point and holds what arrives for `delay_ms`
    from then. `toxicity` is the share of connections affected."""

    delay_ms: Millis
    within_bytes: Annotated[ByteCount, Field(ge=1)] | None = None
    within_s: Seconds | None = None
    toxicity: Ratio = 1.0

    @model_validator(mode="after")
    def _check_window(self) -> Stall:
        if self.within_bytes is None and self.within_s is None:
            raise ValueError("give within_bytes or within_s (or both)")
        return self


class Reset(Triggered):
    """Past its trigger, a TCP connection's packet that finds it so is dropped and the engine
    sends a TCP RST, with the sequence numbers each end expects, to both ends (the fate
    `reset`): the applications see ECONNRESET."""


class LimitData(Strict):
    """Once a TCP connection has carried `after_bytes` bytes of data (TCP payload) one way
    through this link, the next packet with data that way is dropped and the connection is
    closed: each end gets a FIN, then a RST (the fate `reset`). The receiver reads at least
    `after_bytes` (less than one segment more), then end of file. `toxicity` as for `reset`."""

    after_bytes: ByteCount
    toxicity: Ratio = 1.0
