"""The Prometheus page (`/metrics`): per-link counters of the busiest links, per-direction
health, the configured values, the HTTP streams' own figures, and the engine's processes' CPU
and memory."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import psutil

from engine.model.spec import Spec
from engine.model.stats import DirectionStats, EngineStats, LinkStats
from engine.protocol.messages import Info
from engine.web.stats_stream import StatsBroadcaster

#: `/metrics` lists this many links (the busiest first) unless `?links=N` asks for more.
METRICS_LINKS, METRICS_LINKS_MAX = 100, 10_000

#: Per link: (name, kind, help, the extra label's name or "", (extra label value, value) per
#: link).
_MEASURED: tuple[tuple[str, str, str, str, Callable[[LinkStats], Any]], ...] = (
    ("packets_total", "counter",
     "Wire packets into a link, through its queue to the impairments, and out.", "stage",
     lambda link: (("in", link.packets_in), ("past_queue", link.past_queue),
                   ("out", link.packets_out))),
    ("bytes_total", "counter", "Ethernet bytes into and out of a link.", "stage",
     lambda link: (("in", link.bytes_in), ("out", link.bytes_out))),
    ("drops_total", "counter", "Wire packets dropped, by cause.", "cause",
      lambda link: tuple(link.drops.model_dump().items())),
    ("packet_events_total", "counter",
     "Wire packets the AQM marked CE, and those duplicated, corrupted and reordered.", "event",
     lambda link: (("ecn_marked", link.ecn_marked), ("duplicated", link.duplicated),
                   ("corrupted", link.corrupted), ("reordered", link.reordered))),
    ("queue_packets", "gauge", "Wire packets waiting in a link's queue.", "",
     lambda link: (("", link.queue_packets),)),
    ("queue_delay_seconds", "gauge", "Time the queue's backlog takes to drain.", "",
     lambda link: (("", link.queue_delay_ms / 1000),)),
)  # fmt: skip


def sample_value(value: float) -> str:
    """A sample as Prometheus reads it, every digit kept: a counter past a million printed
    with `:g` lost its last digits (1.08914e+08 for 108921315 bytes) and `rate()` stepped."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class _Page:
    """The page's lines as they are written: a family's HELP and TYPE, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP linkshaper_{name} {help_text}")
        self.lines.append(f"# TYPE linkshaper_{name} {kind}")

    def sample(self, name: str, labels: dict[str, str], value: float) -> None:
        text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        self.lines.append(f"linkshaper_{name}{{{text}}} {sample_value(value)}")


def stream_metrics(broadcaster: StatsBroadcaster) -> str:
    """The streams' own figures: each message is encoded once however many read it."""
    return (
        "# HELP linkshaper_http_streams Readers of /stats/stream now.\n"
        "# TYPE linkshaper_http_streams gauge\n"
        f"linkshaper_http_streams {broadcaster.readers}\n"
        "# HELP linkshaper_http_stream_messages_total Stream messages encoded (once for all "
        "readers), handed to readers, and lost by readers too slow.\n"
        "# TYPE linkshaper_http_stream_messages_total counter\n"
        f'linkshaper_http_stream_messages_total{{stage="encoded"}} {broadcaster.encoded}\n'
        f'linkshaper_http_stream_messages_total{{stage="delivered"}} {broadcaster.delivered}\n'
        f'linkshaper_http_stream_messages_total{{stage="lost"}} {broadcaster.lost}\n'
        "# HELP linkshaper_http_streams_ended_total Streams ended because their reader stalled.\n"
        "# TYPE linkshaper_http_streams_ended_total counter\n"
        f"linkshaper_http_streams_ended_total {broadcaster.ended_slow}\n"
    )


def process_metrics(info: Info) -> str:
    """The engine's processes' CPU time and resident memory, read from /proc as the page is
    asked for (nothing polls): the supervisor, each direction's worker, and this API's own
    process when it is not the supervisor (`linkshaper http`). A process this one cannot see
    (gone, or in another PID namespace) is left out."""
    pids = {"supervisor": info.supervisor_pid, **info.worker_pids}
    if os.getpid() not in pids.values():
        pids["http"] = os.getpid()
    cpu, memory = [], []
    for role, pid in pids.items():
        if pid <= 0:
            continue
        try:
            process = psutil.Process(pid)
            with process.oneshot():
                times, rss = process.cpu_times(), process.memory_info().rss
        except psutil.Error:
            continue
        cpu.append(f'linkshaper_process_cpu_seconds_total{{process="{role}"}} '
                   f"{times.user + times.system:g}")  # fmt: skip
        memory.append(f'linkshaper_process_resident_memory_bytes{{process="{role}"}} {rss}')
    return "\n".join([
        "# HELP linkshaper_process_cpu_seconds_total CPU time (user and system) of the "
        "engine's processes: supervisor, workers by direction, and http.",
        "# TYPE linkshaper_process_cpu_seconds_total counter", *cpu,
        "# HELP linkshaper_process_resident_memory_bytes Resident memory of the engine's "
        "processes.",
        "# TYPE linkshaper_process_resident_memory_bytes gauge", *memory,
    ]) + "\n"  # fmt: skip


def _busiest(stats: EngineStats, spec: Spec, limit: int) -> set[str]:
    """The labels of the `limit` links that carried the most bytes (default always first)."""
    carried: dict[str, int] = {"default": 1 << 62}
    for d in (stats.ingress, stats.egress):
        if d is not None:
            for label, link in d.flows.items():
                carried[label] = carried.get(label, 0) + link.bytes_in
    for flow in spec.flows:
        carried.setdefault(flow.label, 0)
    ranked = sorted(carried, key=lambda label: carried[label], reverse=True)
    return set(ranked[:limit])


def prometheus_text(spec: Spec, stats: EngineStats, limit: int = METRICS_LINKS) -> str:
    page = _Page()
    shown = _busiest(stats, spec, limit)
    directions = [d for d in (stats.ingress, stats.egress) if d is not None]
    _measured_series(page, directions, shown)
    _direction_series(page, directions)
    _configured_series(page, spec, shown)
    return "\n".join(page.lines) + "\n"


def _measured_series(page: _Page, directions: list[DirectionStats], shown: set[str]) -> None:
    for name, kind, help_text, extra, values in _MEASURED:
        page.family(name, kind, help_text)
        for d in directions:
            for label, link in d.flows.items():
                if label not in shown:
                    continue
                for extra_value, value in values(link):
                    labels = {"direction": d.direction, "link": label}
                    if extra:
                        labels[extra] = extra_value
                    page.sample(name, labels, value)


def _direction_series(page: _Page, directions: list[DirectionStats]) -> None:
    family, sample = page.family, page.sample
    family(
        "engine_saturated_drops_total",
        "counter",
        "Frames dropped before the engine read them: more came than it can take.",
    )
    for d in directions:
        sample("engine_saturated_drops_total", {"direction": d.direction}, d.engine_saturated)
    family("tx_errors_total", "counter", "Frames the engine could not send.")
    for d in directions:
        sample("tx_errors_total", {"direction": d.direction}, d.tx_errors)
    family(
        "delay_seconds",
        "gauge",
        "Measured arrival-to-release delay of the frames of the last stats window, by quantile.",
    )
    for d in directions:
        for quantile, value in (("0.5", d.delay_p50_ms), ("0.99", d.delay_p99_ms)):
            sample("delay_seconds", {"direction": d.direction, "quantile": quantile}, value / 1000)
    family("interface_up", "gauge", "1 while a direction's interfaces are up and it forwards.")
    for d in directions:
        sample("interface_up", {"direction": d.direction}, int(d.interface_state == "up"))
    family("worker_up", "gauge", "1 while a direction's worker reports; 0 stalled or restarting.")
    for d in directions:
        sample("worker_up", {"direction": d.direction}, int(d.worker_state == "running"))
    family("worker_stalls_total", "counter", "Times a worker was silent too long and restarted.")
    for d in directions:
        sample("worker_stalls_total", {"direction": d.direction}, d.worker_stalls)
    family("reports_dropped_total", "counter", "Reports a worker dropped: nobody was reading.")
    for d in directions:
        sample("reports_dropped_total", {"direction": d.direction}, d.reports_dropped)


def _configured_series(page: _Page, spec: Spec, shown: set[str]) -> None:
    links = [("default", spec.default_link)]
    links += [(f.label, f.link) for f in spec.flows if f.label in shown]
    for name, help_text, pick in (
        ("rate_bits_per_second", "Configured rate.", lambda link: float(link.rate)),
        ("latency_seconds", "Configured latency.", lambda link: link.latency / 1000),
        ("jitter_seconds", "Configured jitter.", lambda link: link.jitter / 1000),
        ("loss_ratio", "Configured random loss.", lambda link: link.loss),
        ("duplicate_ratio", "Configured duplication.", lambda link: link.duplicate),
        ("corrupt_ratio", "Configured corruption.", lambda link: link.corrupt),
        ("reorder_ratio", "Configured netem-style reordering.", lambda link: link.reorder),
    ):
        page.family(name, "gauge", help_text)
        for label, pair in links:
            for direction in ("ingress", "egress"):
                page.sample(name, {"direction": direction, "link": label}, pick(pair.of(direction)))
    page.family("links", "gauge", "Links in the spec, and how many of them this page lists.")
    page.sample("links", {"listed": "all"}, len(spec.flows) + 1)
    page.sample("links", {"listed": "here"}, len(links))
