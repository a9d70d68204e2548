"""A capture file summed up (`linkshaper fates`): per direction and link, the frames by fate,
the delays the forwarded ones got and the longest loss bursts. One model for the text and for
`--json`, named as the HTTP API names its stats (`delay_p50_ms`, the drop causes of `Drops`),
so a script reads both the same way."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from engine.model.fates import FATE_NAMES, MARKS

#: The fates a loss burst is made of (queue overflows and blocks are counted apart).
LOSSES = ("loss", "burst loss")
#: How many of the longest loss bursts a link's summary lists.
BURSTS_LISTED = 5
#: The delay percentiles given, as (field suffix, share).
PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


def mark_key(word: str) -> str | None:
    """The JSON key of the mark a capture comment's word names (`corrupted` for `corrupted
    bit 1234 (byte 154, 0x04)`, `ecn_marked` for `CE-marked`, as the stats name their
    counters); None for a word this version does not know."""
    return next((key for _, name, key in MARKS if word.split(" ", 1)[0] == name), None)


def fate_key(name: str) -> str:
    """A fate's name as a JSON key: `queue full` is `queue_full`, as in the stats' `drops`."""
    return name.replace(" ", "_")


class FramesFate(Protocol):
    """What the summary reads of a frame (engine.captures.pcapng.ReadFate has it)."""

    @property
    def time(self) -> float: ...
    @property
    def direction(self) -> str: ...
    @property
    def link(self) -> str: ...
    @property
    def fate(self) -> str: ...
    @property
    def delay_ms(self) -> float: ...
    @property
    def queued_ms(self) -> float: ...
    @property
    def lost_before(self) -> int: ...
    @property
    def marks(self) -> tuple[str, ...]: ...


class LinkFates(BaseModel):
    """One direction's link (`default` or a flow's label). Delays are of the forwarded frames,
    arrival to release, in ms; 0 with none (`delay_samples` 0), as the stats have them."""

    model_config = ConfigDict(extra="forbid")

    direction: str
    link: str
    frames: int
    #: Every fate's count, 0 included: `forwarded`, `loss`, `burst_loss`, `queue_full`, ...
    fates: dict[str, int]
    #: Frames by what else the link did to them, 0 included (a frame may count in several):
    #: `duplicated` (the copies), `corrupted`, `reordered`, `ecn_marked`, as the stats'.
    impaired: dict[str, int] = {}
    delay_samples: int = 0
    delay_min_ms: float = 0.0
    delay_p50_ms: float = 0.0
    delay_p90_ms: float = 0.0
    delay_p99_ms: float = 0.0
    delay_max_ms: float = 0.0
    #: The median of the part of the delay spent queued (waiting for the rate).
    queued_p50_ms: float = 0.0
    #: Frames lost in a row (random or burst loss), the longest BURSTS_LISTED, longest first.
    loss_bursts: list[int] = []


class FatesSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    links: list[LinkFates]
    #: Records the capture could not keep (read too slowly): in no link's counts.
    records_lost: int = 0


def percentile(ordered: list[float], share: float) -> float:
    """The value `share` of the way up a sorted list (nearest rank, from below)."""
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def loss_bursts(fates: Iterable[str]) -> list[int]:
    """Runs of frames lost in a row (random or bursty loss), longest first."""
    runs: list[int] = []
    run = 0
    for fate in fates:
        if fate in LOSSES:
            run += 1
            continue
        if run:
            runs.append(run)
        run = 0
    if run:
        runs.append(run)
    return sorted(runs, reverse=True)


def link_fates(direction: str, link: str, group: list[FramesFate]) -> LinkFates:
    """One link's frames, in arrival order, summed up."""
    fates = {fate_key(name): 0 for name in FATE_NAMES}
    impaired = {key: 0 for _, _, key in MARKS}
    for frame in group:
        key = fate_key(frame.fate)
        fates[key] = fates.get(key, 0) + 1
        for word in frame.marks:
            if (mark := mark_key(word)) is not None:
                impaired[mark] += 1
    summary = LinkFates(direction=direction, link=link, frames=len(group), fates=fates,
                        impaired=impaired,
                        loss_bursts=loss_bursts(f.fate for f in group)[:BURSTS_LISTED])  # fmt: skip
    forwarded = [f for f in group if f.fate == "forwarded"]
    if forwarded:
        delays = sorted(f.delay_ms for f in forwarded)
        figures = {f"delay_{name}_ms": percentile(delays, share) for name, share in PERCENTILES}
        summary = summary.model_copy(update={
            "delay_samples": len(delays), "delay_min_ms": delays[0], "delay_max_ms": delays[-1],
            "queued_p50_ms": statistics.median(f.queued_ms for f in forwarded), **figures,
        })  # fmt: skip
    return summary


def summarise(frames: Iterable[FramesFate]) -> FatesSummary:
    """Per direction and link (sorted), the frames of a capture summed up."""
    groups: dict[tuple[str, str], list[FramesFate]] = defaultdict(list)
    lost = 0
    for frame in sorted(frames, key=lambda f: f.time):  # arrival order
        groups[(frame.direction, frame.link)].append(frame)
        lost += frame.lost_before
    links = [link_fates(d, link, group) for (d, link), group in sorted(groups.items())]
    return FatesSummary(links=links, records_lost=lost)
