"""Far-end accounting of one direction: which far ends (address, protocol, port) carried how
much, for the top-talkers table and the seed's profile. Frames are sampled (exactly up to a
number per stats window, one in TALKER_SAMPLE beyond), and frames counted in bulk after they
left (the straight path, runs held in bulk) bring their samples in a `StraightTally`."""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Sequence

from engine.core.frames import (
    HEAD_BYTES,
    NON_IP,
    PROTO_TCP,
    PROTO_UDP,
    VNET_HDR_LEN,
    FlowKey,
    FrameBytes,
    flow_key,
    wire_shape,
)
from engine.core.packet import HeldRun
from engine.model.flowtop import MIN_FRAME, FarEnd, wire_bits
from engine.model.spec import FRAMING_OVERHEAD
from engine.model.stats import Talker

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


#: Flow regions whose flow key `count_left` remembers before it forgets them all (some 300
#: bytes each, IPv4). Frames cycling through more flows than this all miss (each read again,
#: some 1 us a frame): at 4,096, 10,000 connections through a link cost 1.7 times one
#: (bench/fault_cost.py); 16,384 holds the 10,000 of that bound in 5 MB at most.
REGION_MEMORY = 16_384


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


class FarEnds:
    """Far end → [wire packets, bytes, wire bits] since the start (the quietest half is
    forgotten when TALKER_MEMORY are known), as seen from one direction's shaped side."""

    def __init__(self, far_is_source: bool) -> None:
        self._far_is_source = far_is_source
        self._talkers: dict[tuple[int, int, int, int], list[int]] = {}
        #: Tallies of frames held in bulk whose far ends are not counted yet: they are, all
        #: together, when the talkers are read or SETTLE_SAMPLES wait (`settle`), not at
        #: every wake-up.
        self._unsettled: list[StraightTally] = []
        #: The frames those tallies sampled: never SETTLE_SAMPLES after `settle_later` returns.
        self.unsettled_samples = 0
        #: Something was counted since `far_ends` was last read.
        self.changed = False
        #: The flow key of each flow region seen leaving a link lately (`count_left`).
        self._region_keys: dict[bytes, FlowKey] = {}
        #: How many frames each one counted stands for: 1, or the kernel fast path's sample
        #: rate while the kernel forwards and the worker reads only a sample (its far ends
        #: are the truth scaled up, as tc's counters are).
        self.scale = 1

    def settle_later(self, tally: StraightTally) -> None:
        """Count the far ends `tally` sampled (frames held in bulk) later, at the latest once
        SETTLE_SAMPLES wait."""
        self._unsettled.append(tally)
        self.changed = True
        self.unsettled_samples += len(tally.sampled)
        if self.unsettled_samples >= SETTLE_SAMPLES:
            self.settle()

    def settle(self) -> None:
        """Count the far ends of the frames held in bulk that are not counted yet."""
        unsettled, self._unsettled = self._unsettled, []
        self.unsettled_samples = 0
        self.count_tallies(unsettled)

    def count_tallies(self, tallies: list[StraightTally]) -> None:
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
                self.add(key, packets, l2_bytes, bits)

    def count_left(self, frames: list[bytes | HeldRun]) -> None:
        """The far ends of frames as they leave their links (vnet headers on), each one
        counted, summed by flow first as `count_tallies` does: what the seed's profile counts
        (after shaping: what a link dropped never counts). Runs held in bulk were counted by
        their tallies (a link that only delays drops nothing). `_flow_region` and `wire_bits`
        are written out here: this runs for every frame that leaves a link. A plain IPv4
        frame's region here holds only what its far end is read from (the fragment field,
        time to live and protocol, the far address and port: 10 bytes; the TTL, which one far
        end's frames share, costs less than a slice more to leave out), so that the frames of
        many connections to one far end (clients of one server) are summed as one; frames
        too short for any far end (under 24 bytes, `flow_key`'s least) are passed over, so
        every other region is longer than 10 bytes and none is taken for a plain one."""
        flows: dict[bytes, list[int]] = {}
        heads: dict[bytes, bytes] = {}
        ip = _ETHERTYPE_AT + 2
        address, port = (ip + 12, ip + 20) if self._far_is_source else (ip + 16, ip + 22)
        for frame in frames:
            if type(frame) is not bytes:
                continue
            if frame[_ETHERTYPE_AT : _ETHERTYPE_AT + 3] == _PLAIN_IPV4 and len(frame) >= ip + 24:
                region = (
                    frame[ip + 6 : ip + 10] + frame[address : address + 4] + frame[port : port + 2]
                )
            elif len(frame) >= _ETHERTYPE_AT + 2:
                region = frame[:HEAD_BYTES]
            else:
                continue
            sums = flows.get(region)
            if sums is None:
                flows[region] = sums = [0, 0, 0]
                heads[region] = frame
            if frame[1]:  # a super-frame: its wire packets from its head and size
                shape = wire_shape(frame)
                sums[0] += shape.packets
                sums[1] += shape.l2_bytes
                sums[2] += wire_bits(shape.l2_bytes, shape.packets)
            else:
                size = len(frame) - VNET_HDR_LEN
                sums[0] += 1
                sums[1] += size
                sums[2] += ((size if size > MIN_FRAME else MIN_FRAME) + FRAMING_OVERHEAD) * 8
        known = self._region_keys
        for region, (packets, l2_bytes, bits) in flows.items():
            key = known.get(region)
            if key is None:  # read once per flow, not at every release
                if len(known) >= REGION_MEMORY:
                    known.clear()
                key = known[region] = flow_key(heads[region])
            if key is not NON_IP:
                self.add(key, packets, l2_bytes, bits)

    def count(self, key: FlowKey, l2_bytes: int, packets: int = 1, weight: int = 1) -> None:
        """Count `packets` wire packets of `l2_bytes` in all (one frame, perhaps a super-frame)
        for the far end of `key`, `weight` times (a sample counts for the frames skipped)."""
        self.add(key, packets * weight, l2_bytes * weight, wire_bits(l2_bytes, packets) * weight)

    def add(self, key: FlowKey, packets: int, l2_bytes: int, bits: int) -> None:
        """Add `packets` wire packets, `l2_bytes` and `bits` on the wire to the far end of
        `key`."""
        if self.scale != 1:
            packets, l2_bytes, bits = packets * self.scale, l2_bytes * self.scale, bits * self.scale
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
        self.changed = True

    def far_ends(self) -> list[FarEnd]:
        """Every far end remembered, with its packets and wire bits (for the seed's profile)."""
        self.settle()
        self.changed = False
        return [(*ident, packets, bits) for ident, (packets, _, bits) in self._talkers.items()]

    def top(self) -> list[Talker]:
        """The far ends that carried the most bytes, busiest first (TOP_TALKERS of them)."""
        self.settle()
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
