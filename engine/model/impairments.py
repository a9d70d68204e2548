"""The parts of a LINK that are more than numbers: its queue and queue discipline, burst loss,
delivery slots and outages. Each model says what it means; the pipeline (engine/core) does it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from engine.model.fields import Millis, Ratio, Strict, tolerant, with_units
from engine.model.units import parse_ratio

#: Default of `queue.held_bytes`: 1 Gbit/s held for a second fits.
HELD_BYTES = 128 * 1024 * 1024

Discipline = Literal["tail_drop", "head_drop", "codel", "fq_codel", "pie"]
AQM_DISCIPLINES = ("codel", "fq_codel", "pie")

#: Each discipline's settings and their defaults: RFC 8289 (CoDel), RFC 8290 (FQ-CoDel),
#: RFC 8033 (PIE). A setting that is None in a spec takes the default of its discipline.
DISCIPLINE_DEFAULTS: dict[str, dict[str, float]] = {
    "tail_drop": {},
    "head_drop": {},
    "codel": {"target": 5.0, "interval": 100.0},
    "fq_codel": {"target": 5.0, "interval": 100.0, "flows": 1024, "quantum": 1514},
    "pie": {"target": 15.0, "tupdate": 15.0, "max_burst": 150.0},
}


class QueueLimit(Strict):
    """The queue in front of the rate limiter: its limits and its discipline.

    An arriving packet that would exceed any limit that is set is dropped (`tail_drop`,
    `codel`, `pie`), or makes room by dropping from the head of the queue (`head_drop`) or from
    the head of the flow queue with the most bytes (`fq_codel`); an empty queue always admits
    one packet. `codel`, `fq_codel` and `pie` also drop (or with `ecn`, mark CE) to keep the
    queue's delay near `target`: see engine/core/disciplines/.

    `held_bytes` bounds what the link holds after the rate limiter, for latency and jitter
    (each frame counts its size plus a fixed overhead for its bookkeeping): a packet that would
    go over it is dropped as `held_full`, so a huge latency set by mistake costs a bounded
    amount of memory."""

    packets: int | None = Field(default=1000, ge=1)
    bytes: int | None = Field(default=None, ge=1)
    ms: Millis | None = 1000.0
    held_bytes: int = Field(default=HELD_BYTES, ge=1, le=1 << 40)
    discipline: Discipline = "tail_drop"
    #: The queue delay an AQM aims at (codel, fq_codel: 5 ms; pie: 15 ms).
    target: Millis | None = None
    #: CoDel's sliding window (codel, fq_codel: 100 ms).
    interval: Millis | None = None
    #: Flow queues of fq_codel (1024), and the bytes each may send per round (1514).
    flows: int | None = Field(default=None, ge=1, le=65536)
    quantum: int | None = Field(default=None, ge=64, le=1 << 20)
    #: How often PIE updates its drop probability (15 ms), and the burst it lets through (150 ms).
    tupdate: Millis | None = None
    max_burst: Millis | None = None
    #: Mark ECN-capable packets CE instead of dropping them (codel, fq_codel, pie).
    ecn: bool = False

    @model_validator(mode="after")
    def _check_discipline(self) -> QueueLimit:
        allowed = DISCIPLINE_DEFAULTS[self.discipline]
        for name in ("target", "interval", "flows", "quantum", "tupdate", "max_burst"):
            if getattr(self, name) is not None and name not in allowed:
                users = [d for d, fields in DISCIPLINE_DEFAULTS.items() if name in fields]
                raise ValueError(
                    f"{name} is a setting of {' and '.join(users)}, not of {self.discipline}"
                )
        if self.ecn and self.discipline not in AQM_DISCIPLINES:
            raise ValueError(f"ecn needs an AQM (codel, fq_codel or pie), not {self.discipline}")
        if self.interval is not None and self.interval <= 0:
            raise ValueError("interval must be above 0")
        if self.tupdate is not None and self.tupdate <= 0:
            raise ValueError("tupdate must be above 0")
        return self

    def time_limit_bits(self, rate: float) -> float | None:
        """What the `ms` limit lets queue at `rate` (bit/s), in the rate limiter's bits
        (framing included): the bound the bottleneck applies, and the TUI shows."""
        return None if self.ms is None else self.ms / 1000.0 * rate

    def setting(self, name: str) -> float:
        """A discipline's setting as in force: the spec's value, or the RFC's default."""
        value = getattr(self, name)
        return float(DISCIPLINE_DEFAULTS[self.discipline][name] if value is None else value)


class BurstLoss(Strict):
    """Gilbert-Elliott loss: a two-state chain stepped once per packet.

    Mean loss is `(p_enter*loss_in_burst + p_exit*loss_outside) / (p_enter + p_exit)`, and with
    `loss_in_burst=1` the mean burst length is `1/p_exit` packets.
    """

    p_enter: Ratio
    p_exit: Annotated[
        float,
        BeforeValidator(tolerant(parse_ratio)),
        Field(gt=0.0, le=1.0),
        with_units(0, 1, "a fraction above 0, or a percentage"),
    ]
    loss_in_burst: Ratio = 1.0
    loss_outside: Ratio = 0.0

    @property
    def mean_loss(self) -> float:
        total = self.p_enter + self.p_exit
        return (self.p_enter * self.loss_in_burst + self.p_exit * self.loss_outside) / total


class MarkovLoss(Strict):
    """netem's four-state loss model (`loss state p13 p31 p32 p23 p14`, after Salsano et al.),
    stepped once per packet: 1 is a packet sent in a gap, 2 sent within a burst, 3 lost within
    a burst, 4 an isolated loss in a gap. From 1 the chain goes to 3 with `p13`, to 4 with
    `p14`; from 2 to 3 with `p23`; from 3 back to 1 with `p31` or to 2 with `p32`; from 4
    always to 1. A packet is lost in states 3 and 4. tc's defaults for the ones not given."""

    p13: Ratio
    p31: Ratio | None = None  # tc: 1 - p13
    p32: Ratio = 0.0
    p23: Ratio = 1.0
    p14: Ratio = 0.0

    @model_validator(mode="after")
    def _check_sums(self) -> MarkovLoss:
        if self.p13 + self.p14 > 1:
            raise ValueError("p13 + p14 must be at most 1")
        if self.leave_burst + self.p32 > 1:
            raise ValueError("p31 + p32 must be at most 1")
        return self

    @property
    def leave_burst(self) -> float:
        return 1.0 - self.p13 if self.p31 is None else self.p31


class Slot(Strict):
    """Deliveries gathered into slots, as netem's `slot` and as Wi-Fi and cellular links
    aggregate: what is due waits for the next slot; a slot sends at most `packets` packets
    and `bytes` bytes (either may be unset), and the next one opens a uniformly drawn
    `min_delay`..`max_delay` later (from when a packet is due, if the link was idle)."""

    min_delay: Millis
    max_delay: Millis | None = None
    packets: int | None = Field(default=None, ge=1)
    bytes: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check_delays(self) -> Slot:
        if self.max_delay is not None and self.max_delay < self.min_delay:
            raise ValueError("max_delay is below min_delay")
        return self

    @property
    def longest(self) -> float:
        return self.min_delay if self.max_delay is None else self.max_delay


OutageMode = Literal["blocked", "hold"]


class Outage(Strict):
    """The link goes down and comes back: periodically (up `period - down`, then down for
    `down`, from when the outage was set), or at random, up and down for exponentially
    distributed times with means `mean_up` and `mean_down` (as Mahimahi's mm-onoff).

    While it is down nothing leaves the queue; what arrives is dropped (`blocked`, counted as
    `outage`) or queued within the queue's limits until the link is back (`hold`, a handover).
    Packets already past the rate limiter (delayed for latency) still arrive."""

    period: Millis | None = None
    down: Millis | None = None
    mean_up: Millis | None = None
    mean_down: Millis | None = None
    mode: OutageMode = "blocked"

    @model_validator(mode="after")
    def _check_schedule(self) -> Outage:
        periodic = self.period is not None or self.down is not None
        random_times = self.mean_up is not None or self.mean_down is not None
        if periodic == random_times:
            raise ValueError("give either period and down, or mean_up and mean_down")
        if periodic:
            if self.period is None or self.down is None:
                raise ValueError("a periodic outage needs both period and down")
            if not 0 < self.down < self.period:
                raise ValueError("down must be above 0 and below period")
        elif (
            self.mean_up is None
            or self.mean_down is None
            or not (self.mean_up > 0 and self.mean_down > 0)
        ):
            raise ValueError("a random outage needs mean_up and mean_down, both above 0")
        return self
