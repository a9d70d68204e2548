"""One direction of the engine, as pure code: classify each frame, pass it through its link.

The worker feeds frames in with the time it read them and sends out whatever `release` hands
back; nothing here touches a socket or a clock, so tests drive it in virtual time.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections.abc import Mapping, Sequence

from engine.core.classifier import DEFAULT_LABEL, Classifier
from engine.core.delay_line import DelaySamples, HeldBudget, Released
from engine.core.fates import FateLog
from engine.core.frames import (
    HEAD_BYTES,
    NON_IP,
    PROTO_TCP,
    PROTO_UDP,
    VNET_HDR_LEN,
    FlowKey,
    FrameBytes,
    flow_key,
    plain_ip,
    plausible_gso,
    segment,
    wire_shape,
)
from engine.core.link import Link
from engine.core.packet import HeldRun, Packet
from engine.model.fates import FORWARDED
from engine.model.flowtop import FarEnd, wire_bits
from engine.model.spec import Direction, Spec
from engine.model.stats import DirectionStats, Drops, LinkStats, Talker
from engine.model.trace import Trace

#: Distinct far ends remembered for the top-talkers table before the quietest are forgotten.
TALKER_MEMORY = 2048
TOP_TALKERS = 10
#: On the straight path (one transparent link), far ends are counted exactly for the first
#: EXACT_TALKERS frames between two stats reports (at the worker's fast pace, a tenth of a
#: second; in proportion at another, see `pace_talkers`); beyond that one frame in
#: TALKER_SAMPLE is read and counted that many times. Reading every frame's addresses costs
#: more than forwarding it, at rates where the table's figures are estimates to the eye anyway.
EXACT_TALKERS = 1000
EXACT_TALKERS_INTERVAL = 0.1
TALKER_SAMPLE = 8
#: Far ends of frames counted after they left (held in bulk, or sent on the straight path)
#: are counted once this many sampled frames wait, some 0.3 ms of work, and whenever the
#: talkers are read: never in one stretch of a whole stats window. With nobody watching, a
#: window is a second, and a stream of 170 k frames a second through a delay line sampled
#: 30 k of them in it: counting them at the report took 20-45 ms, in which nothing was
#: released (a ping beside it measured 20-45 ms late, once a second).
SETTLE_SAMPLES = 256


class StraightTally:
    """What a caller counted of the frames it sent on while `DirectionPipeline.straight` held,
    for `passed_straight`: how many, the plain frames' bytes (vnet headers in), the
    super-frames as (size, head) and the sampled frames as (place from 1, size, head). Which
    frames are sampled for the top-talkers table is decided here: each of the first `exact`,
    and one in TALKER_SAMPLE beyond (by place in the stats window: `offset` came before)."""

    __slots__ = ("exact", "frames", "offset", "plain_bytes", "sampled", "supers")

    def __init__(self, exact: int, offset: int = 0) -> None:
        self.exact = exact
        self.offset = offset
        self.frames = 0
        self.plain_bytes = 0
        self.supers: list[tuple[int, bytes]] = []
        self.sampled: list[tuple[int, int, bytes]] = []

    def count(self, buffer: FrameBytes, start: int, size: int) -> None:
        """One frame of `size` bytes at `start` of `buffer`, sent on."""
        frames = self.frames = self.frames + 1
        if buffer[start + 1]:  # a super-frame: its wire packets are worked out later
            self.supers.append((size, bytes(buffer[start : start + HEAD_BYTES])))
        else:
            self.plain_bytes += size
        if frames <= self.exact or (frames + self.offset) % TALKER_SAMPLE == 0:
            self.sampled.append((frames, size, bytes(buffer[start : start + HEAD_BYTES])))

    def count_plain(
        self, buffer: FrameBytes, sizes: Sequence[int], count: int, stride: int
    ) -> None:
        """`count` frames, none a super-frame, the i-th `sizes[i]` bytes long at `i * stride`
        of `buffer` (a receive batch's slots): what `count` would make of them one by one, for
        a sum and the heads of the frames sampled, not a call per frame."""
        before = self.frames
        last = self.frames = before + count
        self.plain_bytes += sum(sizes[:count])
        exact_last = min(max(self.exact, before), last)  # places before+1..exact_last: each
        first = exact_last + 1  # and from here one in TALKER_SAMPLE, by place in the window
        first += -(first + self.offset) % TALKER_SAMPLE
        sampled = self.sampled
        for place in itertools.chain(
            range(before + 1, exact_last + 1), range(first, last + 1, TALKER_SAMPLE)
        ):
            index = place - before - 1
            start = index * stride
            sampled.append((place, sizes[index], bytes(buffer[start : start + HEAD_BYTES])))

    def weight(self, place: int) -> int:
        """How many frames the sampled frame at `place` counts for."""
        return 1 if place <= self.exact else TALKER_SAMPLE


#: What all links of one direction may hold for delay together (see `queue.held_bytes`): a
#: worker's memory stays bounded however many flow links hold packets.
DIRECTION_HELD_BYTES = 256 * 1024 * 1024


#: The counters that only grow; the rest of LinkStats are gauges (what is held now).
_CUMULATIVE = (
    "packets_in", "bytes_in", "packets_out", "bytes_out", "ecn_marked", "duplicated", "corrupted",
    "reordered",
)  # fmt: skip


#: A frame's first bytes up to its IPv4 header's version and length, for untagged IPv4 with
#: no options (vnet header, then Ethernet): most frames, whose flow fields then lie at fixed
#: places (`_flow_region`).
_PLAIN_IPV4 = b"\x08\x00\x45"
_ETHERTYPE_AT = VNET_HDR_LEN + 12


def _flow_region(head: bytes) -> bytes:
    """Bytes of a frame's `head` that hold everything `flow_key` reads of it, so that two
    heads with the same region have the same flow key: for untagged IPv4 without options,
    the fragment field, protocol, addresses and ports (the fields between, such as the
    length and checksum, differ from frame to frame); for anything else, the whole head."""
    if head[_ETHERTYPE_AT : _ETHERTYPE_AT + 3] == _PLAIN_IPV4:
        ip = _ETHERTYPE_AT + 2
        return head[ip + 6 : ip + 8] + head[ip + 9 : ip + 10] + head[ip + 12 : ip + 24]
    return head


def _quantile(ordered: list[float], q: float) -> float:
    """The `q` quantile of sorted values (the nearest rank), 0 for none."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class DirectionPipeline:
    def __init__(
        self,
        spec: Spec,
        direction: Direction,
        now: float,
        seed: int | None = None,
        traces: Mapping[str, Trace] | None = None,
        unshaped_port: int | None = None,
    ):
        """`unshaped_port`: TCP to and from this port on the inner side (the shaped host's
        own) passes at once, whatever the links do: a sidecar's API stays reachable through
        the interface it shapes, even at 100 % loss. Such frames count as the default link's,
        passed through."""
        self.direction: Direction = direction
        self._unshaped_port = unshaped_port
        self._rng = random.Random(seed)
        self._budget = HeldBudget(DIRECTION_HELD_BYTES)
        self._delays = DelaySamples()
        self._links: dict[str, Link] = {}
        #: The links that hold something (queued or delayed): the only ones `release`,
        #: `idle` and `next_deadline` look at, so idle flow links cost nothing per frame.
        self._busy: set[Link] = set()
        self._retired: list[Link] = []
        #: Frames received so far (a cheap "was there traffic" for the worker's stats pace).
        self.frames_seen = 0
        #: Links whose counters may have changed since the last stats (a frame came, they
        #: were configured or flushed); with the busy and retired ones, the only links a
        #: report looks at, so ten thousand idle flow links cost nothing per report.
        self._touched: set[Link] = set()
        #: Retired links that finished draining since the last stats: counted once more.
        self._finished: list[Link] = []
        #: Each link's stats as last added into the totals, and the totals: every link's
        #: cumulative counters (live, retired and gone), kept up to date by differences.
        self._counted: dict[Link, LinkStats] = {}
        self._totals: dict[str, int] = dict.fromkeys(_CUMULATIVE, 0)
        self._drop_totals: dict[str, int] = dict.fromkeys(Drops.model_fields, 0)
        self._labels: dict[Link, str] = {}
        #: Far end → [wire packets, bytes, wire bits] since the start (the quietest half is
        #: forgotten when TALKER_MEMORY are known).
        self._talkers: dict[tuple[int, int, int, int], list[int]] = {}
        #: Tallies of frames held in bulk whose far ends are not counted yet: they are, all
        #: together, when the talkers are read or SETTLE_SAMPLES wait (`_settle_talkers`),
        #: not at every wake-up.
        self._unsettled: list[StraightTally] = []
        #: The frames those tallies sampled: never SETTLE_SAMPLES after `hold` returns.
        self.unsettled_samples = 0
        self.talkers_changed = False
        self._far_is_source = direction == "ingress"
        self.spec = spec
        self._classifier = Classifier([], direction)
        self._window_frames = 0  # frames since the last stats (for talker sampling)
        self._exact_talkers = EXACT_TALKERS  # in a window (see pace_talkers)
        #: While a capture runs: where every link notes each frame's fate (start_capture).
        self.fates: FateLog | None = None
        self.configure(spec, now, traces)

    def configure(self, spec: Spec, now: float, traces: Mapping[str, Trace] | None = None) -> None:
        """Apply a new spec, with the traces it names parsed (path → trace; one missing means
        it could not be read, and that link's rate stands). Links of flows that stay keep their
        state; links of removed flows drain what they hold and are then dropped."""
        traces = traces or {}
        wanted = {DEFAULT_LABEL: spec.link(self.direction)}
        for flow in spec.flows:
            wanted[flow.label] = flow.link.of(self.direction)
        for label, link in list(self._links.items()):
            if label not in wanted:
                del self._links[label]
                self._busy.discard(link)
                self._retired.append(link)
        for label, link_spec in wanted.items():
            trace = traces.get(link_spec.trace) if link_spec.trace is not None else None
            if label in self._links:
                self._links[label].configure(link_spec, now, trace)
            else:
                self._links[label] = Link(
                    link_spec, self._rng, now, self._budget, trace, self._delays
                )
                self._labels[self._links[label]] = label
                self._links[label].label = label
                self._links[label].fates = self.fates
            self._touched.add(self._links[label])
        self._classifier = Classifier(spec.flows, self.direction)
        self.spec = spec
        #: How long a frame may wait unread after it arrived (its arrival time known from the
        #: kernel's stamp) and still leave on time: the least delay of any link it may take.
        self.read_slack = min(link.least_delay for link in self._links.values())
        self._choose_straight()

    def _choose_straight(self) -> None:
        default = self._links[DEFAULT_LABEL]
        alone = self._classifier.empty and self.fates is None
        #: The one link every frame takes, if it is transparent (and no capture runs, which
        #: needs every frame's fate): `forward`'s shortest path.
        self._straight: Link | None = default if alone and default.transparent else None
        #: The one link every frame takes, if it only delays (see `delay_line`).
        self._delay_only: Link | None = (
            default if alone and default.delay_only and self._unshaped_port is None else None
        )

    @property
    def delay_line(self) -> Link | None:
        """The link every frame takes, when all it does is delay them (`LinkSpec.delay_only`):
        then a caller may hold frames in bulk where it read them (`can_hold`, `hold`) instead
        of one by one through `forward`, and send them from there when `release` hands their
        runs out. None when frames must go through `forward`."""
        return None if self._retired else self._delay_only

    def can_hold(self, held_bytes: int) -> bool:
        """Whether frames weighing `held_bytes` (as the caller counts what it holds) fit the
        limits of the `delay_line` link; if not, they go through `forward`, which drops what
        does not."""
        link = self._delay_only
        return link is not None and link.can_hold(held_bytes)

    def tally(self) -> StraightTally:
        """A tally for frames held in bulk, sampling far ends as `forward` does."""
        return StraightTally(self.exact_talkers_left, self._window_frames)

    def hold(self, runs: list[HeldRun], tally: StraightTally) -> None:
        """Hold runs of frames on the `delay_line` link (see Link.hold_runs); `tally` counted
        them (their far ends)."""
        link = self._delay_only
        assert link is not None
        link.hold_runs(runs)
        self._busy.add(link)
        self._touched.add(link)
        self._count_frames(tally.frames)
        if tally.sampled:
            self._unsettled.append(tally)
            self.talkers_changed = True
            self.unsettled_samples += len(tally.sampled)
            if self.unsettled_samples >= SETTLE_SAMPLES:
                self._settle_talkers()

    def _unshaped(self, frame: FrameBytes) -> bool:
        """Whether `frame` is TCP to (ingress) or from (egress) the unshaped port; if so it is
        counted as passed through the default link."""
        key = flow_key(frame)
        local_port = key.dport if self._far_is_source else key.sport
        if key.protocol != PROTO_TCP or local_port != self._unshaped_port:
            return False
        if len(frame) > VNET_HDR_LEN and not frame[1]:
            packets, l2_bytes = 1, len(frame) - VNET_HDR_LEN
        else:
            packets, l2_bytes = wire_shape(frame)
        default = self._links[DEFAULT_LABEL]
        default.pass_through(packets, l2_bytes)
        self._touched.add(default)
        return True

    def forward(self, frame: FrameBytes, now: float) -> bool:
        """Take one frame (with its vnet header) that arrived at `now`.

        True means the caller sends it at once, as it is: its link is transparent and holds
        nothing, so that is exactly what the link would do, and the frame (perhaps a view of
        the caller's receive buffer) is never copied. False means the link keeps a copy that
        `release` hands out in time, or it dropped the frame.
        """
        straight = self._straight
        if straight is not None and straight.idle and len(frame) > VNET_HDR_LEN + 14:
            tally = StraightTally(self.exact_talkers_left, self._window_frames)
            tally.count(frame, 0, len(frame))
            self.passed_straight(tally)
            return True
        if self._unshaped_port is not None and self._unshaped(frame):
            return True
        self.frames_seen += 1
        window = self._window_frames = self._window_frames + 1
        # Far ends are counted as on the straight path (see EXACT_TALKERS): 0 = not sampled.
        exact = self._exact_talkers
        weight = 1 if window <= exact else 0 if window % TALKER_SAMPLE else TALKER_SAMPLE
        size = len(frame)
        if weight or not self._classifier.empty or not plain_ip(frame, size):
            key = flow_key(frame)
            droppable = key is not NON_IP
        else:  # nothing needs its fields: IP (so droppable), untagged, long enough
            key, droppable = NON_IP, True
        label = DEFAULT_LABEL if self._classifier.empty else self._classifier.classify(key)
        link = self._links[label]
        self._touched.add(link)
        plain = size > VNET_HDR_LEN and not frame[1]  # no GSO: one wire packet
        if plain:
            packets, l2_bytes = 1, size - VNET_HDR_LEN
        else:  # a super-frame, or too short to tell
            packets, l2_bytes = wire_shape(frame)
        if weight and droppable:
            self._count_talker(key, l2_bytes, packets, weight)
        if not plain and not plausible_gso(frame):
            link.refuse_malformed(packets, l2_bytes, bytes(frame), now)
            return False
        if link.transparent and link.idle:
            link.pass_through(packets, l2_bytes)
            if self.fates is not None:
                self.fates.note(bytes(frame), now, FORWARDED, label)
            return True
        frame = bytes(frame)
        packet = Packet(frame, now, packets, l2_bytes, droppable)
        if packets > 1 and (
            link.needs_wire_packets or l2_bytes > link.split_above or link.would_drop(packet)
        ):
            for piece in segment(frame):
                shape = wire_shape(piece)
                link.offer(Packet(piece, now, shape.packets, shape.l2_bytes, droppable))
        else:
            link.offer(packet)
        if not link.idle:
            self._busy.add(link)
        return False

    def start_capture(self, snaplen: int, drops_only: bool) -> None:
        """Note every frame's fate from now on (see fates.py); the straight path, which
        counts frames only in bulk after they left, is off meanwhile."""
        self.fates = FateLog(snaplen, drops_only)
        for link in [*self._links.values(), *self._retired]:
            link.fates = self.fates
        self._choose_straight()

    def stop_capture(self) -> None:
        self.fates = None
        for link in [*self._links.values(), *self._retired]:
            link.fates = None
        self._choose_straight()

    def flush(self, label: str | None = None) -> int:
        """Drop what the links hold (all of them, or the one labelled `label`, which may be
        `default`); the number of wire packets dropped."""
        if label is None:
            links = [*self._links.values(), *self._retired]
        else:
            links = [self._links[label]] if label in self._links else []
        dropped = 0
        for link in links:
            dropped += link.flush()
            self._busy.discard(link)
            self._touched.add(link)
        return dropped

    @property
    def straight(self) -> bool:
        """One transparent link takes every frame and holds nothing: a frame may go out the
        moment it is read and be counted after it left, in bulk (`passed_straight`), which
        keeps the bookkeeping off the packet's path."""
        straight = self._straight
        return straight is not None and straight.idle and not self._retired

    def passed_straight(self, tally: StraightTally) -> None:
        """Count the frames the caller sent on while `straight` held (see StraightTally)."""
        straight = self._straight
        assert straight is not None
        self._touched.add(straight)
        frames = tally.frames
        plain = frames - len(tally.supers)
        packets, l2_bytes = plain, tally.plain_bytes - plain * VNET_HDR_LEN
        for size, head in tally.supers:
            shape = wire_shape(head, size)
            packets += shape.packets
            l2_bytes += shape.l2_bytes
        straight.pass_through(packets, l2_bytes)
        self._count_tally(tally)

    def _count_tally(self, tally: StraightTally) -> None:
        """Frames seen, and the far ends of the frames `tally` sampled."""
        self._count_frames(tally.frames)
        self._count_far_ends([tally])

    def _count_frames(self, frames: int) -> None:
        """`frames` more seen, in all and in this stats window (for talker sampling)."""
        self.frames_seen += frames
        self._window_frames += frames

    def _settle_talkers(self) -> None:
        """Count the far ends of the frames held in bulk that are not counted yet."""
        unsettled, self._unsettled = self._unsettled, []
        self.unsettled_samples = 0
        self._count_far_ends(unsettled)

    def _count_far_ends(self, tallies: list[StraightTally]) -> None:
        """The far ends of the frames `tallies` sampled. Frames of one flow are summed first
        and their far end read once: a frame's flow fields are found by a few slices of its
        head (`_flow_region`) for less than reading them (`flow_key`)."""
        flows: dict[bytes, list[int]] = {}
        heads: dict[bytes, bytes] = {}
        for tally in tallies:
            for place, size, head in tally.sampled:
                if head[1]:  # a super-frame: its wire packets from its head and size
                    shape = wire_shape(head, size)
                    packets, l2_bytes = shape.packets, shape.l2_bytes
                else:
                    packets, l2_bytes = 1, size - VNET_HDR_LEN
                weight = tally.weight(place)
                region = _flow_region(head)
                sums = flows.get(region)
                if sums is None:
                    flows[region] = sums = [0, 0, 0]
                    heads[region] = head
                sums[0] += packets * weight
                sums[1] += l2_bytes * weight
                sums[2] += wire_bits(l2_bytes, packets) * weight
        for region, (packets, l2_bytes, bits) in flows.items():
            key = flow_key(heads[region])
            if key is not NON_IP:
                self._add_talker(key, packets, l2_bytes, bits)

    @property
    def exact_talkers_left(self) -> int:
        """How many more straight-path frames count their far ends one by one before the
        next stats (EXACT_TALKERS in all); beyond, one frame in TALKER_SAMPLE counts for all."""
        return max(0, self._exact_talkers - self._window_frames)

    def pace_talkers(self, stats_interval: float) -> None:
        """Stats come every `stats_interval` seconds from now on: as many frames a second
        count their far ends exactly as at EXACT_TALKERS_INTERVAL (a slower pace must not
        turn exact figures into estimates)."""
        self._exact_talkers = max(
            EXACT_TALKERS, round(EXACT_TALKERS * stats_interval / EXACT_TALKERS_INTERVAL)
        )

    def _count_talker(self, key: FlowKey, l2_bytes: int, packets: int = 1, weight: int = 1) -> None:
        """Count `packets` wire packets of `l2_bytes` in all (one frame, perhaps a super-frame)
        for the far end of `key`, `weight` times (a sample counts for the frames skipped)."""
        self._add_talker(
            key, packets * weight, l2_bytes * weight, wire_bits(l2_bytes, packets) * weight
        )

    def _add_talker(self, key: FlowKey, packets: int, l2_bytes: int, bits: int) -> None:
        """Add `packets` wire packets, `l2_bytes` and `bits` on the wire to the far end of
        `key`."""
        ported = key.protocol == PROTO_TCP or key.protocol == PROTO_UDP  # else no port
        if self._far_is_source:
            ident = (key.version, key.src, key.protocol, key.sport if ported else 0)
        else:
            ident = (key.version, key.dst, key.protocol, key.dport if ported else 0)
        entry = self._talkers.get(ident)
        if entry is None:
            if len(self._talkers) >= TALKER_MEMORY:
                keep = sorted(self._talkers.items(), key=lambda kv: kv[1][1], reverse=True)
                self._talkers = dict(keep[: TALKER_MEMORY // 2])
            self._talkers[ident] = [packets, l2_bytes, bits]
        else:
            entry[0] += packets
            entry[1] += l2_bytes
            entry[2] += bits
        self.talkers_changed = True

    def far_ends(self) -> list[FarEnd]:
        """Every far end remembered, with its packets and wire bits (for the seed's profile)."""
        self._settle_talkers()
        self.talkers_changed = False
        return [(*ident, packets, bits) for ident, (packets, _, bits) in self._talkers.items()]

    def release(self, now: float, serialise: bool = True) -> list[bytes | HeldRun]:
        """Frames due by `now`, in the order of their release times: each a copy, or a run of
        frames held in bulk where the caller read them (`hold`). Without `serialise`, only
        those already through their links' serialisers (see `Link.advance`)."""
        out: list[Released] = []
        busy = self._busy
        several = len(busy) + len(self._retired) > 1
        if busy:
            for link in list(busy) if several else busy:
                link.advance(now, out, serialise)
            # A link that leaves the busy set (looked at by every stats) is touched, so that
            # what it released reaches the next stats.
            if several:
                done = [link for link in busy if link.idle]
                busy.difference_update(done)
                self._touched.update(done)
            elif (only := next(iter(busy))).idle:
                busy.clear()
                self._touched.add(only)
        if self._retired:
            for link in self._retired:
                link.advance(now, out, serialise)
            for link in [r for r in self._retired if r.idle]:
                self._retired.remove(link)
                self._finished.append(link)
        if len(out) > 1 and several:
            out.sort(key=lambda item: (item[0], item[1]))
        return [frame for _, _, frame in out]

    @property
    def transparent(self) -> bool:
        """Every link forwards at once and holds nothing back: arrival times do not matter."""
        return all(link.transparent for link in self._links.values())

    @property
    def idle(self) -> bool:
        """Nothing held anywhere: `release` would hand out nothing, now or later."""
        if self._retired:
            return False
        straight = self._straight
        if straight is not None:  # the only link
            return straight.idle
        return not self._busy

    def next_deadline(self) -> float | None:
        if len(self._busy) == 1 and not self._retired:  # the usual case: one link holds
            for link in self._busy:
                return link.next_event()
        links = [*self._busy, *self._retired]
        times = [t for link in links if (t := link.next_event()) is not None]
        return min(times) if times else None

    def _top_talkers(self) -> list[Talker]:
        """The far ends that carried the most bytes, busiest first (TOP_TALKERS of them)."""
        self._settle_talkers()
        talkers = sorted(self._talkers.items(), key=lambda kv: kv[1][1], reverse=True)
        return [
            Talker(
                address=str(
                    ipaddress.IPv4Address(address)
                    if version == 4
                    else ipaddress.IPv6Address(address)
                ),
                protocol=protocol,
                port=port,
                packets=packets,
                bytes=size,
            )
            for (version, address, protocol, port), (packets, size, _bits) in talkers[:TOP_TALKERS]
        ]

    def stats(self, now: float, changed_only: bool = False) -> DirectionStats:
        """Counters of the direction and of each link; with `changed_only`, `flows` holds only
        the links whose counters changed since the last call (what a worker sends up)."""
        self._window_frames = 0
        looked_at = self._touched | self._busy
        looked_at.update(self._retired)
        looked_at.update(self._finished)
        changed: dict[str, LinkStats] = {}
        queue_packets = queue_bytes = in_flight = held_bytes = 0
        queue_delay = 0.0
        counted = self._counted
        totals, drop_totals = self._totals, self._drop_totals
        for link in looked_at:
            now_stats = link.stats()
            before = counted.get(link)
            if before is not now_stats:
                for name in _CUMULATIVE:
                    totals[name] += getattr(now_stats, name) - (
                        getattr(before, name) if before else 0
                    )
                for name in drop_totals:
                    drop_totals[name] += getattr(now_stats.drops, name) - (
                        getattr(before.drops, name) if before else 0
                    )
                counted[link] = now_stats
                label = self._labels.get(link)
                if label is not None and self._links.get(label) is link:
                    changed[label] = now_stats
            # Gauges: a link looked at by nobody here is idle, and holds nothing.
            queue_packets += now_stats.queue_packets
            queue_bytes += now_stats.queue_bytes
            in_flight += now_stats.in_flight
            held_bytes += now_stats.held_bytes
            queue_delay = max(queue_delay, now_stats.queue_delay_ms)
        for link in self._finished:
            counted.pop(link, None)
            self._labels.pop(link, None)
        self._finished = []
        self._touched = set()
        total = LinkStats(
            **totals,
            drops=Drops(**drop_totals),
            queue_packets=queue_packets,
            queue_bytes=queue_bytes,
            queue_delay_ms=queue_delay,
            in_flight=in_flight,
            held_bytes=held_bytes,
        )
        if changed_only:
            flows = changed
        else:
            flows = {label: link.stats() for label, link in self._links.items()}
        delays = self._delays.take()
        return DirectionStats(
            direction=self.direction,
            at=now,
            total=total,
            flows=flows,
            flows_changed_only=changed_only,
            top_talkers=self._top_talkers(),
            delay_samples=len(delays),
            delay_p50_ms=_quantile(delays, 0.5) * 1000.0,
            delay_p99_ms=_quantile(delays, 0.99) * 1000.0,
        )
