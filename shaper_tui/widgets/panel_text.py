"""The words and figures of a direction panel: the queue's limits as applied, compact scale
tops, and delays that always carry their unit in the figure's few columns."""

from __future__ import annotations

from engine.model.spec import FRAMING_OVERHEAD, UNLIMITED_RATE, LinkSpec
from engine.model.units import format_duration_ms


def rate_figure(count: float) -> str:
    """`13/s`, `1/s` (0.99 too: not `1.0/s` beside `13/s`), `0.4/s`, `0/s`."""
    return f"{count:.0f}/s" if count >= 0.95 or count == 0 else f"{count:.1f}/s"


def queue_limits_text(link: LinkSpec, held: int = 0) -> list[str]:
    """The queue's limits as the bottleneck applies them: packets, bytes and time, the time
    limit also in full-size packets at the rate set (which of them binds first); longest
    first, then shorter wordings for a narrow panel (`FittedLine`). While the link is
    blocked (rate 0) the queue keeps the `held` frames queued before the block (a change
    never drops a queued packet; the time limit is checked on admission: docs/spec.md), sent
    as late as the block was long on unblocking; it says so."""
    wordings = _limits_wordings(link)
    if link.rate != 0 or link.trace is not None:
        return wordings
    return [f"{wordings[0]} · blocked: {held:,} pkts held until unblocked",
            f"{wordings[1]} · blocked: {held:,} held", f"{wordings[2]} · {held:,} held",
            *wordings]  # fmt: skip


def _limits_wordings(link: LinkSpec) -> list[str]:
    if link.rate >= UNLIMITED_RATE and link.trace is None:
        return ["Q limit none: rate unlimited", "Q none: unlimited"]  # nothing queues
    queue = link.queue
    parts = [f"{queue.packets} pkts"] if queue.packets is not None else []
    if queue.bytes is not None:
        parts.append(f"{queue.bytes / 1e6:.3g} MB")
    bits = queue.time_limit_bits(float(link.rate))
    short = list(parts)
    if queue.ms is not None and bits is not None:
        text = format_duration_ms(queue.ms)
        short.append(text)
        if link.trace is None and link.rate > 0:
            packets = bits / ((1514 + FRAMING_OVERHEAD) * 8)
            short[-1] += f" ({compact_count(packets)} pkts)"
            text += f" ({packets:,.0f} pkts)"
        parts.append(text)
    return ["Q limit " + (", ".join(parts) or "none"), "Q limit " + (", ".join(short) or "none"),
            "Q " + (", ".join(short) or "none")]  # fmt: skip


def compact_count(count: float) -> str:
    """`812k`, `1.2M`: a count in a few characters."""
    for factor, unit in ((1e6, "M"), (1e3, "k")):
        if count >= 10 * factor:
            return f"{count / factor:.3g}{unit}"
    return f"{count:,.0f}"


def compact_rate(bits_per_second: float) -> str:
    """A scale's top in a few characters: `20M`, `1.5G`, `500k`."""
    for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if bits_per_second >= factor:
            return f"{bits_per_second / factor:.3g}{unit}"
    return f"{bits_per_second:.3g}"


def compact_bit_rate(bits_per_second: float) -> str:
    """A throughput scale's top with its unit, short: `20Mb/s`, `1b/s` (a bare `1` or `20k`
    said nothing of what it counts)."""
    return f"{compact_rate(bits_per_second)}b/s"


def compact_per_second(count: float) -> str:
    """A drop scale's top with its unit, in six characters at most: `1/s`, `500/s`, `20k/s`,
    `500k/s`, `2M/s`."""
    for factor, unit in ((1e6, "M"), (1e3, "k")):
        if count >= factor:
            return f"{count / factor:.3g}{unit}/s"
    return f"{count:.3g}/s"


def compact_ms(ms: float) -> str:
    """`50ms`, `2s`."""
    return f"{ms / 1000:.3g}s" if ms >= 1000 else f"{ms:.3g}ms"


def delay_pair(p50_ms: float, p99_ms: float) -> str:
    """`81.2/98.2 ms`, `11.8/11.8 s`, `62.3ms/20.1s`: in the figure's 12 columns with their
    units (`11775/11784 ms` lost its ` ms` there)."""
    if p99_ms >= 1000 and p50_ms >= 1000:
        return f"{_seconds(p50_ms)}/{_seconds(p99_ms)} s"
    if p99_ms >= 1000 or p50_ms >= 1000:  # each its own unit: `0.0623/20.1` lost its ` s`
        return f"{compact_ms(p50_ms)}/{compact_ms(p99_ms)}"
    return f"{ms_figure(p50_ms)}/{ms_figure(p99_ms)} ms"


def duration_text(ms: float) -> str:
    """`223 ms`, `11.9 s`."""
    return f"{_seconds(ms)} s" if ms >= 1000 else f"{ms_figure(ms)} ms"


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.3g}" if ms < 1e6 else f"{ms / 1000:.0f}"


def ms_figure(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"
