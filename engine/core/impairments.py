"""A link's impairments: random and bursty loss (or ECN marks instead), duplication,
corruption, netem's reordering, jitter and outages. Each draws from the link's `Random`, so
the same seed gives the same impairments, or with the spec's `seed` from each packet's own
stream (seeded.py); the correlated ones keep their state across a change of settings."""

from __future__ import annotations

import random
from statistics import NormalDist

from engine.core.connections import ConnectionTable, connection_key
from engine.core.correlated import CorrelatedEvent, CorrelatedUniform
from engine.core.corruption import corrupt
from engine.core.ecn import mark_packet
from engine.core.hold_faults import HoldFaults, toxic_draw
from engine.core.link_counters import LinkCounters
from engine.core.outages import OutageClock
from engine.core.packet import Packet
from engine.core.seeded import ARRIVAL, COPY, PAST_QUEUE, KeyedDraws, PacketKeys, mix64
from engine.model.fates import CORRUPTED, CORRUPTED_BIT_SHIFT, REORDERED
from engine.model.faults import Blackhole
from engine.model.spec import LinkSpec

#: Pareto jitter is heavy-tailed; draws are capped at this many times `jitter`.
PARETO_CAP = 10.0
PARETO_SHAPE = 3.0
#: With a seed, a connection's toxicity is drawn from its first packet's key and this salt.
CONNECTION_SALT = 0x6A09E667F3BCC908
_STANDARD_NORMAL = NormalDist()


def _event(p: float, c: float, rng: random.Random, old: CorrelatedEvent | None
           ) -> CorrelatedEvent | None:  # fmt: skip
    """A correlated event process when `c` is set (its state kept across changes), else None:
    a plain draw per packet, as before correlations existed."""
    if c <= 0 or p <= 0:
        return None
    if old is None:
        return CorrelatedEvent(p, c, rng)
    old.configure(p, c)
    return old


class Impairments(LinkCounters):
    """The impairments part of a `Link` (mixed into it: see LinkCounters). Its settings are
    its slice of the spec, taken in `_configure_impairments`; the link asks it, per packet,
    `_is_lost`, `_marked`, `_duplicated_now`, `_netem_effects` and `_jitter_draw`."""

    _rng: random.Random
    label: str

    def _start_impairments(self) -> None:
        #: Where a packet's random decisions come from: the link's `Random`, or with a `seed`
        #: a stream per packet (`_keys` names it, `_draws` draws it: seeded.py).
        self._draws: random.Random = self._rng
        self._keys: PacketKeys | None = None
        self._in_burst = False
        self._markov_state = 1
        self._loss_event: CorrelatedEvent | None = None
        self._duplicate_event: CorrelatedEvent | None = None
        self._corrupt_event: CorrelatedEvent | None = None
        self._reorder_event: CorrelatedEvent | None = None
        self._jitter_uniform: CorrelatedUniform | None = None
        self._gap_count = 0
        self._outage: OutageClock | None = None
        #: With a connection fault: the `blackhole`'s settings and the connections seen (else
        #: None: no cost).
        self._blackhole: Blackhole | None = None
        self._connections: ConnectionTable | None = None
        #: `slow_close` and `stall` (hold_faults.py): they use the same connection table.
        self._holds = HoldFaults()

    def _configure_impairments(self, spec: LinkSpec, now: float) -> None:
        self._configure_seed(spec.seed)
        rng = self._draws
        self._loss = spec.loss
        self._jitter = spec.jitter / 1000.0 if spec.jitter_strength > 0 else 0.0
        self._strength = spec.jitter_strength
        self._reorder = spec.reorder_packets
        self._distribution = spec.jitter_distribution
        self._burst = spec.burst_loss
        self._markov = spec.markov_loss
        self._loss_ecn = spec.loss_ecn
        self._lossy = self._loss > 0 or self._burst is not None or self._markov is not None
        self._loss_event = _event(spec.loss, spec.loss_correlation, rng, self._loss_event)
        self._duplicate = spec.duplicate
        self._duplicate_event = _event(
            spec.duplicate, spec.duplicate_correlation, rng, self._duplicate_event
        )
        self._corrupt = spec.corrupt
        self._corrupt_event = _event(
            spec.corrupt, spec.corrupt_correlation, rng, self._corrupt_event
        )
        self._netem_reorder = spec.reorder
        self._reorder_event = _event(
            spec.reorder, spec.reorder_correlation, rng, self._reorder_event
        )
        self._gap = spec.gap
        if spec.jitter_correlation > 0:
            if self._jitter_uniform is None:
                self._jitter_uniform = CorrelatedUniform(spec.jitter_correlation, rng)
            self._jitter_uniform.configure(spec.jitter_correlation)
        else:
            self._jitter_uniform = None
        self._per_packet = self._corrupt > 0 or self._netem_reorder > 0
        self._set_outage(spec, now)
        new_blackhole = spec.blackhole is not None and self._blackhole is None
        self._blackhole = spec.blackhole
        self._holds.configure(spec.slow_close, spec.stall)
        if spec.blackhole is None and not self._holds.active:
            self._connections = None
        elif self._connections is None or new_blackhole:  # (a change of settings keeps the
            self._connections = ConnectionTable()  # table; a new blackhole decides afresh)

    def _configure_seed(self, seed: int | None) -> None:
        """A new seed (or none) starts new streams: the correlated processes draw from them."""
        keys = self._keys
        if (None if keys is None else keys.seed) == seed:
            return
        self._keys = None if seed is None else PacketKeys(seed, self.label)
        self._draws = self._rng if seed is None else KeyedDraws()
        self._loss_event = self._duplicate_event = None
        self._corrupt_event = self._reorder_event = None
        self._jitter_uniform = None

    def _key_arrival(self, packet: Packet) -> None:
        """With a seed: the packet's key, and its stream for the decisions at arrival."""
        keys = self._keys
        assert keys is not None
        packet.fate_key = keys.key(packet.frame)
        draws = self._draws
        assert isinstance(draws, KeyedDraws)
        draws.start(packet.fate_key, ARRIVAL)

    def _key_copy(self, original: Packet, copy: Packet) -> None:
        """A duplicate's own key, a function of its original's."""
        copy.fate_key = mix64(original.fate_key ^ COPY)

    def _past_queue_stream(self, packet: Packet) -> None:
        """With a seed: the packet's stream for loss, corruption, reordering and jitter."""
        draws = self._draws
        assert isinstance(draws, KeyedDraws)
        draws.start(packet.fate_key, PAST_QUEUE)

    def _set_outage(self, spec: LinkSpec, now: float) -> None:
        """A new schedule starts from now; the same one stays in force."""
        if spec.outage is None:
            self._outage = None
        elif self._outage is None or self._outage.outage != spec.outage:
            self._outage = OutageClock(spec.outage, self._rng, now)

    def _connection_faults(self, packet: Packet) -> bool:
        """Count the packet to its connection, then: whether the `blackhole` took the
        connection and its time or its bytes (before this packet) are up (True: drop it);
        else mark the packet with the hold `slow_close` or `stall` wants for it."""
        table, blackhole = self._connections, self._blackhole
        assert table is not None
        key = connection_key(packet.frame)
        if key is None:
            return False
        connection = table.see(key, packet.arrival, packet.l2_bytes,
                               lambda: blackhole is not None
                               and self._toxic(packet, blackhole.toxicity))  # fmt: skip
        self.connections_untracked = table.untracked
        if connection is None:
            return False
        if (
            blackhole is not None
            and connection.toxic
            and blackhole.struck(
                connection.bytes - packet.l2_bytes, packet.arrival - connection.first_seen
            )
        ):
            return True
        if self._holds.active:
            self._holds.arrival(packet, connection, self._unit)
        return False

    def _unit(self, packet: Packet, salt: int) -> float:
        """A uniform draw in [0, 1) for a new connection (`packet` its first): from the
        link's `Random`, or with a seed from the packet's key and `salt`."""
        if self._keys is not None:
            return (mix64(packet.fate_key ^ salt) >> 11) * 2.0**-53
        return self._rng.random()

    def _toxic(self, packet: Packet, toxicity: float, salt: int = CONNECTION_SALT) -> bool:
        """Whether a new connection (this its first packet) is affected: a draw from the
        link's `Random`, or with a seed from the packet's key (so the same on every run)."""
        return toxic_draw(packet, self._unit, salt, toxicity)

    def _duplicated_now(self) -> bool:
        event = self._duplicate_event
        return event() if event is not None else self._draws.random() < self._duplicate

    def _netem_effects(self, packet: Packet) -> bool:
        """Corrupt the packet if its turn comes; True if netem's reordering sends it now,
        past latency and jitter (every `gap`-th packet may, with probability `reorder`)."""
        rng = self._draws
        if self._corrupt > 0 and packet.droppable:
            event = self._corrupt_event
            if event() if event is not None else rng.random() < self._corrupt:
                packet.frame, bit = corrupt(packet.frame, rng)
                self.corrupted += packet.wire_packets
                if bit is not None:
                    packet.marks |= CORRUPTED | bit << CORRUPTED_BIT_SHIFT
        if self._netem_reorder <= 0:
            return False
        if self._gap_count < self._gap - 1:
            self._gap_count += 1
            return False
        event = self._reorder_event
        if event() if event is not None else rng.random() < self._netem_reorder:
            self._gap_count = 0
            self.reordered += packet.wire_packets
            packet.marks |= REORDERED
            return True
        self._gap_count += 1
        return False

    def _marked(self, packet: Packet) -> bool:
        """With `loss_ecn`, mark an ECN-capable packet that loss chose CE instead (netem's
        `loss ... ecn`); False means it is dropped."""
        if not self._loss_ecn or not mark_packet(packet):
            return False
        self.ecn_marked += packet.wire_packets
        return True

    def _markov_lost(self) -> bool:
        """One step of netem's four-state chain (see MarkovLoss): lost in states 3 and 4."""
        model = self._markov
        assert model is not None
        draw = self._draws.random()
        state = self._markov_state
        if state == 1:
            state = 3 if draw < model.p13 else 4 if draw < model.p13 + model.p14 else 1
        elif state == 2:
            state = 3 if draw < model.p23 else 2
        elif state == 3:
            leave = model.leave_burst
            state = 1 if draw < leave else 2 if draw < leave + model.p32 else 3
        else:
            state = 1
        self._markov_state = state
        return state >= 3

    def _is_lost(self) -> bool:
        rng = self._draws
        if self._markov is not None and self._markov_lost():
            return True
        burst = self._burst
        if burst is not None:
            if self._in_burst:
                if rng.random() < burst.p_exit:
                    self._in_burst = False
            elif rng.random() < burst.p_enter:
                self._in_burst = True
            p = burst.loss_in_burst if self._in_burst else burst.loss_outside
            if p > 0 and rng.random() < p:
                return True
        if self._loss <= 0:
            return False
        event = self._loss_event
        return event() if event is not None else rng.random() < self._loss

    def _jitter_draw(self) -> float:
        """Extra delay in seconds, never negative; every distribution has mean jitter/2.
        With `jitter_correlation`, each draw comes from a correlated uniform (correlated.py)
        through the distribution's inverse CDF, so the distribution stays what it is."""
        jitter = self._jitter
        if self._jitter_uniform is not None:
            return self._correlated_jitter(self._jitter_uniform())
        rng = self._draws
        if self._distribution == "uniform":
            return rng.random() * jitter
        if self._distribution == "normal":
            while True:  # normal(mean J/2, sd J/6) truncated to [0, J]
                value = rng.gauss(jitter / 2, jitter / 6)
                if 0.0 <= value <= jitter:
                    return value
        # Lomax (Pareto II) with shape 3: mean J/2, heavy tail, capped.
        return min((rng.paretovariate(PARETO_SHAPE) - 1.0) * jitter, PARETO_CAP * jitter)

    def _correlated_jitter(self, u: float) -> float:
        jitter = self._jitter
        if self._distribution == "uniform":
            return u * jitter
        if self._distribution == "normal":
            low, high = _STANDARD_NORMAL.cdf(-3.0), _STANDARD_NORMAL.cdf(3.0)
            z = _STANDARD_NORMAL.inv_cdf(low + u * (high - low))
            return float(min(jitter, max(0.0, jitter / 2 + z * jitter / 6)))
        tail: float = (1.0 - u) ** (-1.0 / PARETO_SHAPE) - 1.0
        return min(tail * jitter, PARETO_CAP * jitter)
