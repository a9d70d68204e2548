"""One direction of the engine, as pure code: classify each frame, pass it through its link.

The worker feeds frames in with the time it read them and sends out whatever `release` hands
back; nothing here touches a socket or a clock, so tests drive it in virtual time. This module
routes (classify, the straight path, the delay line, each frame through `forward`); what the
frames' far ends carried is counted in far_ends.py, and reports are made in ledger.py.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from engine.core.classifier import DEFAULT_LABEL, Classifier
from engine.core.delay_line import DelaySamples, HeldBudget, Released
from engine.core.far_ends import (
    EXACT_TALKERS,
    EXACT_TALKERS_INTERVAL,
    FarEnds,
    StraightTally,
)
from engine.core.fates import FateLog
from engine.core.frames import (
    NON_IP,
    PROTO_TCP,
    VNET_HDR_LEN,
    FrameBytes,
    flow_key,
    plain_ip,
    plausible_gso,
    segment,
    wire_shape,
)
from engine.core.ledger import StatsLedger
from engine.core.link import Link
from engine.core.packet import HeldRun, Packet
from engine.core.plan import Interner
from engine.core.rebuild import Rebuilds, Staging
from engine.model.fates import FORWARDED
from engine.model.flowtop import FarEnd
from engine.model.spec import Direction, Spec
from engine.model.stats import DirectionStats
from engine.model.trace import Trace

#: What all links of one direction may hold for delay together (see `queue.held_bytes`): a
#: worker's memory stays bounded however many flow links hold packets.
DIRECTION_HELD_BYTES = 256 * 1024 * 1024


class DirectionPipeline(Rebuilds):
    """The links of one direction (the default link and one per flow) and the way of each
    frame to one of them."""

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
        own) passes at once, whatever the links do (a sidecar's API stays reachable through
        the interface it shapes), counted as the default link's, passed through."""
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
        self._far_is_source = direction == "ingress"
        self._far_ends = FarEnds(self._far_is_source)
        #: Bound once: `forward` counts a sampled frame's far end without a lookup more.
        self._count_talker = self._far_ends.count
        self._ledger = StatsLedger(direction, self._links, self._delays, self._far_ends)
        #: The ledger's: links whose counters may have changed since the last stats, marked
        #: by `forward` for every frame.
        self._touched = self._ledger.touched
        self._classifier = Classifier((), direction)
        #: Equal link specs made one object, so that `apply` tells unchanged links by `is`.
        self._interner = Interner()
        self._staging: Staging | None = None
        self._window_frames = 0  # frames since the last stats (for talker sampling)
        self._exact_talkers = EXACT_TALKERS  # in a window (see pace_talkers)
        #: While a capture runs: where every link notes each frame's fate (start_capture).
        self.fates: FateLog | None = None
        #: Frames a link's TCP fault made for the end frames come from (see tcp_faults.py):
        #: the worker sends them on the interface it reads from, and empties this.
        self.back: list[bytes] = []
        self.configure(spec, now, traces)

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
        """Whether frames weighing `held_bytes` (as the caller counts) fit the `delay_line`
        link's limits; if not, they go through `forward`, which drops what does not."""
        link = self._delay_only
        return link is not None and link.can_hold(held_bytes)

    def tally(self) -> StraightTally:
        """A tally for frames held in bulk, sampling far ends as `forward` does."""
        return StraightTally(self.exact_talkers_left, self._window_frames)

    def hold(self, runs: list[HeldRun], tally: StraightTally) -> None:
        """Hold runs of frames on the `delay_line` link (Link.hold_runs); `tally` counted them."""
        link = self._delay_only
        assert link is not None
        link.hold_runs(runs)
        self._busy.add(link)
        self._touched.add(link)
        self._count_frames(tally.frames)
        if tally.sampled:
            self._far_ends.settle_later(tally)

    def _unshaped(self, frame: FrameBytes) -> bool:
        """Whether `frame` is TCP to (ingress) or from (egress) the unshaped port (then it is
        counted as passed through the default link)."""
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
        self._window_frames += 1
        size = len(frame)
        if not self._classifier.empty or not plain_ip(frame, size):
            key = flow_key(frame)
            droppable = key is not NON_IP
        else:  # nothing needs its fields yet: IP (so droppable), untagged, long enough
            key, droppable = NON_IP, True
        label = DEFAULT_LABEL if self._classifier.empty else self._classifier.classify(key)
        link = self._links[label]
        self._touched.add(link)
        plain = size > VNET_HDR_LEN and not frame[1]  # no GSO: one wire packet
        if plain:
            packets, l2_bytes = 1, size - VNET_HDR_LEN
        else:  # a super-frame, or too short to tell
            packets, l2_bytes = wire_shape(frame)
        if not plain and not plausible_gso(frame):
            link.refuse_malformed(packets, l2_bytes, bytes(frame), now)
            return False
        if link.transparent and link.idle:
            link.pass_through(packets, l2_bytes)
            if droppable:  # it leaves now: its far end counts now (else when it leaves)
                self._count_talker(key if key is not NON_IP else flow_key(frame), l2_bytes,
                                   packets)  # fmt: skip
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
        if link.back:
            self.back.extend(link.back)
            link.back.clear()
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

    def sample_far_ends(self, every: int) -> None:
        """Each frame read from now on stands for `every` (the fast path's sample) in the far
        ends' counts (top talkers, the seed's profiles); 1 when every frame is read again."""
        self._far_ends.scale = every

    def passed_kernel(self, packets: int, l2_bytes: int) -> None:
        """Count frames the kernel forwarded on the one link (the fast path: tc's counters, less
        the sample the worker read, which `forward` counted)."""
        straight = self._straight
        if straight is not None and (packets or l2_bytes):
            self._touched.add(straight)
            straight.pass_through(packets, l2_bytes)

    def _count_tally(self, tally: StraightTally) -> None:
        """Frames seen, and the far ends of the frames `tally` sampled."""
        self._count_frames(tally.frames)
        self._far_ends.count_tallies([tally])

    def _count_frames(self, frames: int) -> None:
        """`frames` more seen, in all and in this stats window (for talker sampling)."""
        self.frames_seen += frames
        self._window_frames += frames

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

    def far_ends(self) -> list[FarEnd]:
        """Every far end remembered, with its packets and wire bits (for the seed's profile)."""
        return self._far_ends.far_ends()

    @property
    def talkers_changed(self) -> bool:
        """Far ends were counted since `far_ends` was last read."""
        return self._far_ends.changed

    @property
    def unsettled_samples(self) -> int:
        """Sampled frames held in bulk whose far ends are not counted yet (see FarEnds)."""
        return self._far_ends.unsettled_samples

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
                self._ledger.finished.append(link)
        if len(out) > 1 and several:
            out.sort(key=lambda item: (item[0], item[1]))
        frames = [frame for _, _, frame in out]
        if frames:
            self._far_ends.count_left(frames)
        return frames

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

    def stats(self, now: float, changed_only: bool = False) -> DirectionStats:
        """Counters of the direction and of each link; with `changed_only`, `flows` holds only
        the links whose counters changed since the last call (what a worker sends up)."""
        self._window_frames = 0
        return self._ledger.report(now, self._busy, self._retired, changed_only)
