"""One direction of the link: its controls and its live figures."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message

from engine.model.rates import LinkRates
from engine.model.spec import FRAMING_OVERHEAD, UNLIMITED_RATE, Direction, LinkSpec
from engine.model.units import format_duration_ms, format_rate, format_share
from shaper_tui.link_edits import (
    DISCIPLINES,
    JITTER_DISTRIBUTIONS,
    LOSS_MODELS,
    OUTAGE_MODES,
    SWITCH,
    Field,
    shown_value,
)
from shaper_tui.scales import (
    DURATION,
    LOSS,
    OUTAGE_EVERY,
    OUTAGE_FOR,
    QUEUE,
    RATE,
    STRENGTH,
    Scale,
)
from shaper_tui.textual_fixes import set_border_subtitle
from shaper_tui.widgets.choice_control import ChoiceControl
from shaper_tui.widgets.fitted_line import FittedLine
from shaper_tui.widgets.metric_spark import MetricSpark
from shaper_tui.widgets.steady_label import SteadyLabel
from shaper_tui.widgets.time_axis import TimeAxis
from shaper_tui.widgets.value_slider import ValueSlider

TITLES: dict[Direction, str] = {"ingress": "Download (ingress)", "egress": "Upload (egress)"}

SLIDERS: tuple[tuple[Field, str, Scale], ...] = (
    ("rate", "Rate", RATE),
    ("loss", "Loss", LOSS),
    ("latency", "Latency", DURATION),
    ("jitter", "Jitter", DURATION),
    ("jitter_strength", "Strength", STRENGTH),
    ("queue", "Queue", QUEUE),
    ("duplicate", "Duplicate", LOSS),
    ("corrupt", "Corrupt", LOSS),
    ("reorder", "Reorder", LOSS),
    ("slot", "Slots", DURATION),
    ("outage_every", "Out every", OUTAGE_EVERY),
    ("outage_for", "Out for", OUTAGE_FOR),
)
CHOICES: tuple[tuple[Field, str, tuple[str, ...]], ...] = (
    ("loss_model", "Loss mode", LOSS_MODELS),
    ("jitter_distribution", "Jitter as", JITTER_DISTRIBUTIONS),
    ("discipline", "Queue as", DISCIPLINES),
    ("ecn", "ECN", SWITCH),
    ("outage", "Outage", OUTAGE_MODES),
)
#: Top to bottom, as a user reads a link: capacity, loss, then delay.
BASIC: tuple[Field, ...] = (
    "rate", "loss", "loss_model", "latency", "jitter", "jitter_strength", "jitter_distribution",
    "queue",
)  # fmt: skip
#: The rarer settings, shown with `a` (so that 80x24 still holds the basic ones and graphs):
#: the queue's discipline, netem's other impairments, delivery slots and outages.
ADVANCED: tuple[Field, ...] = (
    "discipline", "ecn", "duplicate", "corrupt", "reorder", "slot", "outage", "outage_every",
    "outage_for",
)  # fmt: skip
ORDER: tuple[Field, ...] = (*BASIC, *ADVANCED)


class ControlsScroll(VerticalScroll, can_focus=False, inherit_bindings=False):
    """The controls, scrolled to the focused one when they do not fit; without the scroll
    keys of its own, so that ↑ and ↓ still move between controls."""


def _per_second(count: float) -> str:
    return f"{count:.0f}/s" if count >= 1 or count == 0 else f"{count:.1f}/s"


class DirectionPanel(Vertical):
    DEFAULT_CSS = """
    DirectionPanel {
        width: 1fr;
        height: 1fr;
        border: round $primary;
        border-title-style: bold;
        padding: 0 1;
    }
    DirectionPanel.-focus-within {
        border: round $accent;
    }
    /* The controls take what they need, up to what leaves each graph a row (`_fit`); past
       that they scroll (the focused one is scrolled into view). */
    DirectionPanel > .controls {
        height: auto;
        scrollbar-size-vertical: 1;
    }
    /* The graphs share the rest of the panel's height: they grow with the terminal. */
    DirectionPanel > .graphs {
        height: 1fr;
    }
    DirectionPanel > .graphs > MetricSpark {
        height: 1fr;
        min-height: 1;
    }
    DirectionPanel .advanced {
        display: none;
        height: auto;
        border-top: dashed $primary-darken-2;
    }
    DirectionPanel.-advanced .advanced {
        display: block;
    }
    DirectionPanel > .did {
        width: 1fr;
        height: 1;
        color: $text-muted;
    }
    DirectionPanel > .stall {
        width: 1fr;
        height: auto;
        color: $warning;
        display: none;
    }
    DirectionPanel > .stall.-shown {
        display: block;
    }
    """

    @dataclass
    class Changed(Message):
        """The user set one of the panel's controls: `field` of `direction` to `value` (a
        number in the scale's units, or a choice's name)."""

        panel: DirectionPanel
        direction: Direction
        field: Field
        value: float | str

        @property
        def control(self) -> DirectionPanel:
            return self.panel

    def __init__(self, direction: Direction, link: LinkSpec) -> None:
        super().__init__(id=f"panel-{direction}")
        self.direction: Direction = direction
        self.link = link
        self.border_title = TITLES[direction]
        self.controls: dict[Field, ValueSlider | ChoiceControl] = {}
        self.sparks = {
            key: MetricSpark(label, id=f"{direction}-{key}")
            for key, label in (
                ("in", "In"), ("out", "Out"), ("lost", "Lost"), ("queue-drops", "Q-drops"),
                ("delay", "Delay"),
            )
        }  # fmt: skip
        #: Set beside did: the queue's limits as the engine applies them, the round trip set
        #: and measured, and why traffic stands still after an extreme setting (if it does).
        self.queue_limits = FittedLine(queue_limits_text(link), id=f"{direction}-queue-limits",
                                       classes="did")  # fmt: skip
        self.rtt = FittedLine(["RTT set -"], id=f"{direction}-rtt", classes="did")
        self.stall = SteadyLabel("", id=f"{direction}-stall", classes="stall")
        #: Frames the engine could not take (dropped before any link saw them), while any are.
        self.saturated = SteadyLabel("", id=f"{direction}-saturated", classes="stall")
        self._packets = ""

    def compose(self) -> ComposeResult:
        sliders = {field: (label, scale) for field, label, scale in SLIDERS}
        choices = {field: (label, options) for field, label, options in CHOICES}

        def make(field: Field) -> ValueSlider | ChoiceControl:
            control_id = f"{self.direction}-{field}"
            value = shown_value(self.link, field)
            control: ValueSlider | ChoiceControl
            if field in sliders:
                label, scale = sliders[field]
                assert isinstance(value, float)
                control = ValueSlider(
                    label, scale, value, field=field, direction=self.direction, id=control_id,
                    title=f"{TITLES[self.direction]}: {label}",
                )  # fmt: skip
            else:
                label, options = choices[field]
                control = ChoiceControl(
                    label, options, str(value), field=field, direction=self.direction,
                    id=control_id, title=f"{TITLES[self.direction]}: {label}",
                )  # fmt: skip
            self.controls[field] = control
            return control

        with ControlsScroll(classes="controls"):
            for field in BASIC:
                yield make(field)
            with Vertical(classes="advanced"):
                for field in ADVANCED:
                    yield make(field)
        with Vertical(classes="graphs"):
            yield from self.sparks.values()
            yield TimeAxis()
        yield self.queue_limits
        yield self.rtt
        yield self.stall
        yield self.saturated

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        """Cap the controls' height so that every graph row (and the time axis) keeps at
        least one row: at 80x24 with `a` open, the controls scroll, the figures stay."""
        graphs = self.query_one(".graphs")
        needed = sum(1 for child in graphs.children if child.display)
        needed += sum(1 for line in (self.queue_limits, self.rtt) if line.display)
        needed += 1 if self.saturated.has_class("-shown") else 0  # one short line
        if self.stall.has_class("-shown"):  # it wraps: the rows it takes
            needed += max(1, self.stall.outer_size.height)
        room = max(3, self.content_size.height - needed)
        self.query_one(".controls").styles.max_height = room

    # A class, not `:focus-within`: that pseudo-class has Textual restyle the whole panel
    # (graphs and all) on every focus move inside it; the class changes only on entering or
    # leaving the panel.
    def on_descendant_focus(self) -> None:
        self._focus_moved()

    def on_descendant_blur(self) -> None:
        self._focus_moved()

    def _focus_moved(self) -> None:
        focused = self.screen.focused
        self.set_class(focused is not None and self in focused.ancestors, "-focus-within")

    def _field_of(self, control: object) -> Field:
        return next(field for field, widget in self.controls.items() if widget is control)

    def on_value_slider_changed(self, event: ValueSlider.Changed) -> None:
        event.stop()
        field = self._field_of(event.control)
        self.post_message(self.Changed(self, self.direction, field, event.value))

    def on_choice_control_changed(self, event: ChoiceControl.Changed) -> None:
        event.stop()
        field = self._field_of(event.control)
        self.post_message(self.Changed(self, self.direction, field, event.value))

    def show_link(self, link: LinkSpec) -> None:
        """Show what the engine has in force (no Changed messages: nothing echoes back)."""
        self.link = link
        self.queue_limits.update(queue_limits_text(link))
        for field in ORDER:
            value = shown_value(link, field)
            widget = self.controls.get(field)
            if isinstance(widget, ValueSlider) and isinstance(value, float):  # noqa: SIM114
                widget.value = value
            elif isinstance(widget, ChoiceControl) and isinstance(value, str):
                widget.value = value

    def show_rates(self, rates: LinkRates, loss_share: float | None = None) -> None:
        """Throughput on the scale of the rate in force (its top, in the accent colour; what
        goes over it is drawn in the warning colour), else of the recent maximum; drops on the
        scale of their recent maximum; packets a second in the border. `loss_share`: random
        loss over what reached the impairments, taken over a longer span (see LinkFigures);
        by default that of `rates`."""
        lost = rates.lost_drops
        sparks = self.sparks
        limit = self.link.rate if 0 < self.link.rate < UNLIMITED_RATE else None
        for key, bits in (("in", rates.bits_in), ("out", rates.bits_out)):
            top = sparks[key].ceiling_for(limit, bits)
            sparks[key].push(bits, format_rate(bits), limit, compact_rate(top))
        if loss_share is None:
            loss_share = rates.impairment_share
        # Loss is a share of what got past the queue; a block or an outage (or loss counted by
        # an engine that does not say what got past its queue), of what came in.
        share = loss_share if rates.loss_drops and rates.past_queue else rates.loss_share
        share_text = f"{format_share(share)} " if lost else ""
        sparks["lost"].push(lost, f"{share_text}{_per_second(lost)}")
        queue_drops = rates.queue_drops + rates.aqm_drops
        marks = f" ce {_per_second(rates.ecn_marks)}" if rates.ecn_marks else ""
        sparks["queue-drops"].push(
            queue_drops, f"{_per_second(queue_drops)} {rates.queue_packets}p{marks}"
        )
        if self.link.rate == 0 and self.link.trace is None:  # blocked: say what it holds
            self.queue_limits.update(queue_limits_text(self.link, rates.queue_packets))
        packets = f"{rates.packets_in:,.0f} pkt/s in · {rates.packets_out:,.0f} out"
        if packets != self._packets:  # the border row alone: not the panel and all in it
            self._packets = packets
            set_border_subtitle(self, packets)

    def show_delay(self, p50_ms: float, p99_ms: float) -> None:
        """What the engine measured frames to spend in this direction's links: median and
        99th percentile of latency + jitter + queue (beside the Latency set above), on a
        millisecond scale that is at least the latency and jitter set."""
        figure = delay_pair(p50_ms, p99_ms) if p99_ms > 0 else "-"
        spark = self.sparks["delay"]
        spark.least = max(1.0, self.link.latency + self.link.jitter)
        spark.push(p99_ms, figure, scale_text=compact_ms(spark.ceiling_for(None, p99_ms)))

    def show_rtt(self, set_ms: float, measured_ms: float | None) -> None:
        """The round trip set (both directions' latency) beside the one measured (both
        directions' median delays): the same on both panels."""
        measured = "-" if measured_ms is None else duration_text(measured_ms)
        self.rtt.update([f"RTT set {_ms(set_ms)} ms · measured {measured}",
                         f"RTT {_ms(set_ms)} ms · did {measured}"])  # fmt: skip

    def show_stall(self, note: str) -> None:
        """Why the direction stands still (after an extreme setting), or "" for nothing."""
        self.stall.show(note)
        self.stall.set_class(bool(note), "-shown")

    def show_saturated(self, per_second: float) -> None:
        """Frames a second the engine itself dropped, unable to take them (0: the line goes)."""
        text = f"Engine saturated: {_per_second(per_second)} dropped" if per_second > 0 else ""
        self.saturated.show(text)
        if self.saturated.has_class("-shown") != bool(text):
            self.saturated.set_class(bool(text), "-shown")
            self._fit()  # a row more or less for the controls, none taken from the graphs


def queue_limits_text(link: LinkSpec, held: int = 0) -> list[str]:
    """The queue's limits as the bottleneck applies them: packets, bytes and time, the time
    limit also in full-size packets at the rate set (which of them binds first); longest
    first, then shorter wordings for a narrow panel (`FittedLine`). While the link is
    blocked (rate 0) the queue keeps the `held` frames, sent late on unblocking (a time
    limit is drain time at the rate, checked on admission: docs/spec.md), and says so."""
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


def compact_ms(ms: float) -> str:
    """`50ms`, `2s`."""
    return f"{ms / 1000:.3g}s" if ms >= 1000 else f"{ms:.3g}ms"


def delay_pair(p50_ms: float, p99_ms: float) -> str:
    """`81.2/98.2 ms`, `11.8/11.8 s`: both in the unit of the larger, in the figure's 12
    columns with its unit (`11775/11784 ms` lost its ` ms` there)."""
    if p99_ms >= 1000 or p50_ms >= 1000:
        return f"{_seconds(p50_ms)}/{_seconds(p99_ms)} s"
    return f"{_ms(p50_ms)}/{_ms(p99_ms)} ms"


def duration_text(ms: float) -> str:
    """`223 ms`, `11.9 s`."""
    return f"{_seconds(ms)} s" if ms >= 1000 else f"{_ms(ms)} ms"


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.3g}" if ms < 1e6 else f"{ms / 1000:.0f}"


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"
