"""One direction of the link: its controls and its live figures."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static

from engine.model.rates import LinkRates
from engine.model.spec import UNLIMITED_RATE, Direction, LinkSpec
from engine.model.units import format_rate, format_share
from shaper_tui.fault_rows import FAULT_CHOICES, FAULT_NAMES, FAULT_ORDER, FAULT_SLIDERS
from shaper_tui.link_edits import (
    DISCIPLINES,
    JITTER_DISTRIBUTIONS,
    LOSS_MODELS,
    OUTAGE_MODES,
    SWITCH,
    Field,
    shown_value,
)  # fmt: skip
from shaper_tui.scales import DURATION, LOSS, OUTAGE_EVERY, OUTAGE_FOR, QUEUE, RATE, STRENGTH, Scale
from shaper_tui.textual_fixes import set_border_subtitle
from shaper_tui.widgets.choice_control import ChoiceControl
from shaper_tui.widgets.fitted_line import FittedLine
from shaper_tui.widgets.metric_spark import MetricSpark
from shaper_tui.widgets.panel_text import (
    compact_bit_rate,
    compact_ms,
    compact_per_second,
    delay_pair,
    duration_text,
    queue_limits_text,
    rate_figure,
)
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
    *FAULT_SLIDERS,
)
CHOICES: tuple[tuple[Field, str, tuple[str, ...]], ...] = (
    ("loss_model", "Loss mode", LOSS_MODELS),
    ("jitter_distribution", "Jitter as", JITTER_DISTRIBUTIONS),
    ("discipline", "Queue as", DISCIPLINES),
    ("ecn", "ECN", SWITCH),
    ("outage", "Outage", OUTAGE_MODES),
    ("seed", "Seed", SWITCH),
    *FAULT_CHOICES,
)
#: Top to bottom, as a user reads a link: capacity, loss, then delay.
BASIC: tuple[Field, ...] = (
    "rate", "loss", "loss_model", "latency", "jitter", "jitter_strength", "jitter_distribution",
    "queue",
)  # fmt: skip
#: The rarer settings, shown with `a` (so that 80x24 still holds the basic ones and graphs):
#: the queue's discipline, netem's other impairments, delivery slots, outages, the seed
#: (reproducible fates) and the connection faults.
ADVANCED: tuple[Field, ...] = (
    "discipline", "ecn", "duplicate", "corrupt", "reorder", "slot", "outage", "outage_every",
    "outage_for", "seed", *FAULT_ORDER,
)  # fmt: skip
ORDER: tuple[Field, ...] = (*BASIC, *ADVANCED)
#: Each control's name (undo, refusals, prompts): its label, or a fault part's full name.
NAMES: dict[Field, str] = {field: label for field, label, _ in (*SLIDERS, *CHOICES)} | FAULT_NAMES


class ControlsScroll(VerticalScroll, can_focus=False, inherit_bindings=False):
    """The controls, scrolled to the focused one when they do not fit; without the scroll
    keys of its own, so that ↑ and ↓ still move between controls."""


class DirectionPanel(Vertical):
    DEFAULT_CSS = """
    DirectionPanel {
        width: 1fr;
        height: 1fr;
        border: round $primary;
        border-title-style: bold;
        padding: 0 1;
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
    DirectionPanel > .pad {
        height: 0;
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
        #: A step (→, l: a burst of them on one control is one undo step), not a value typed
        #: or picked from a list (an undo step of its own).
        step: bool = True

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
        #: Whether the focus is on one of its controls (its border says so).
        self.focus_within = False
        #: Blank rows matching the other panel's occasional lines (see `_fit`).
        self.pad = Static("", classes="pad")
        self._pad_rows = 0
        #: Frames in the queue at the last report (held there while the link is blocked).
        self._queued = 0

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
                    title=f"{TITLES[self.direction]}: {NAMES[field]}",
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
        yield TimeAxis()  # outside the graphs: never the row a short panel clips
        yield self.queue_limits
        yield self.rtt
        yield self.stall
        yield self.saturated
        yield self.pad

    def on_mount(self) -> None:
        # (a theme picked from the palette recolours the border set inline)
        self.watch(self.app, "theme", lambda _theme: self._focus_moved(), init=False)

    def on_resize(self, event: events.Resize) -> None:
        self._fit()
        # A stall note wraps anew at the new width; and the focused control, in controls
        # that now scroll, is brought back on screen (it stayed where it was, out of view).
        self.call_after_refresh(self._fit)
        self.call_after_refresh(self._focused_into_view)

    def _focused_into_view(self) -> None:
        focused = self.screen.focused
        if focused is not None and self in focused.ancestors:
            focused.scroll_visible(animate=False, immediate=True)

    def extra_rows(self) -> int:
        """Rows the panel's occasional lines take now (the saturated line, the stall note)."""
        rows = 1 if self.saturated.has_class("-shown") else 0  # one short line
        if self.stall.has_class("-shown"):  # it wraps: the rows it takes
            rows += max(1, self.stall.outer_size.height)
        return rows

    def _fit(self) -> None:
        """Fit every direction panel on the screen to the occasional lines of any of them, so
        their graphs keep the same rows side by side (a blank pad under the panel with fewer
        lines), and cap the controls' height so that every graph keeps at least one row: at
        80x24 with `a` open, the controls scroll, the figures stay."""
        panels = list(self.screen.query(DirectionPanel)) if self.is_attached else [self]
        extra = max(panel.extra_rows() for panel in panels)
        for panel in panels:
            panel.fit_to(extra)

    def fit_to(self, extra: int) -> None:
        """Leave `extra` rows under the fixed lines, padded if this panel's own take fewer."""
        own = self.extra_rows()
        if self._pad_rows != extra - own:
            self._pad_rows = extra - own
            self.pad.styles.height = extra - own
        needed = len(self.sparks) + 1  # each graph a row, and the time axis
        needed += sum(1 for line in (self.queue_limits, self.rtt) if line.display)
        room = max(3, self.content_size.height - needed - extra)
        self.query_one(".controls").styles.max_height = room

    # Neither `:focus-within` nor a class: either has Textual restyle the whole panel (graphs
    # and all) when the focus enters or leaves it; the border's colour alone is set inline.
    def on_descendant_focus(self) -> None:
        self._focus_moved()

    def on_descendant_blur(self) -> None:
        self._focus_moved()

    def _focus_moved(self) -> None:
        focused = self.screen.focused
        self.focus_within = focused is not None and self in focused.ancestors
        colour = self.app.theme_variables["accent" if self.focus_within else "primary"]
        if self.styles.border_top != ("round", Color.parse(colour)):
            self.styles.border = ("round", colour)

    def _field_of(self, control: object) -> Field:
        return next(field for field, widget in self.controls.items() if widget is control)

    def on_value_slider_changed(self, event: ValueSlider.Changed) -> None:
        event.stop()
        field = self._field_of(event.control)
        self.post_message(self.Changed(self, self.direction, field, event.value, event.step))

    def on_choice_control_changed(self, event: ChoiceControl.Changed) -> None:
        event.stop()
        field = self._field_of(event.control)
        self.post_message(self.Changed(self, self.direction, field, event.value, event.step))

    def show_link(self, link: LinkSpec) -> None:
        """Show what the engine has in force (no Changed messages: nothing echoes back)."""
        self.link = link
        self.queue_limits.update(queue_limits_text(link, self._queued))
        for field in ORDER:
            value = shown_value(link, field)
            widget = self.controls.get(field)
            if isinstance(widget, ValueSlider) and isinstance(value, float):  # noqa: SIM114
                widget.value = value
            elif isinstance(widget, ChoiceControl) and isinstance(value, str):
                widget.value = value

    def show_rates(
        self, rates: LinkRates, loss_share: float | None = None, drops: LinkRates | None = None
    ) -> None:
        """Throughput on the scale of the rate in force (its top, in the accent colour; what
        goes over it is drawn in the warning colour), else of the recent maximum; drops on the
        scale of their recent maximum; packets a second in the border. `loss_share`: random
        loss over what reached the impairments, taken over a longer span (see LinkFigures);
        by default that of `rates`. `drops`: the rates the drop figures are taken from (those
        since a change, when the last second spans one), by default `rates`."""
        throughput = rates
        rates = drops if drops is not None else rates
        lost = rates.lost_drops
        sparks = self.sparks
        limit = self.link.rate if 0 < self.link.rate < UNLIMITED_RATE else None
        for key, bits in (("in", throughput.bits_in), ("out", throughput.bits_out)):
            top = sparks[key].ceiling_for(limit, bits)
            sparks[key].push(bits, format_rate(bits), limit, compact_bit_rate(top))
        if loss_share is None:
            loss_share = rates.impairment_share
        # Loss is a share of what got past the queue; a block or an outage (or loss counted by
        # an engine that does not say what got past its queue), of what came in.
        share = loss_share if rates.loss_drops and rates.past_queue else rates.loss_share
        share_text = f"{format_share(share)} " if lost else ""
        lost_top = compact_per_second(sparks["lost"].ceiling_for(None, lost))
        sparks["lost"].push(lost, f"{share_text}{rate_figure(lost)}", scale_text=lost_top)
        queue_drops = rates.queue_drops + rates.aqm_drops
        marks = f" ce {rate_figure(rates.ecn_marks)}" if rates.ecn_marks else ""
        queue_top = compact_per_second(sparks["queue-drops"].ceiling_for(None, queue_drops))
        sparks["queue-drops"].push(
            queue_drops,
            f"{rate_figure(queue_drops)} {rates.queue_packets}p{marks}",
            scale_text=queue_top,
        )
        self._queued = rates.queue_packets
        if self.link.rate == 0 and self.link.trace is None:  # blocked: say what it holds
            self.queue_limits.update(queue_limits_text(self.link, self._queued))
        packets = f"{throughput.packets_in:,.0f} pkt/s in · {throughput.packets_out:,.0f} out"
        if packets != self._packets:  # the border row alone: not the panel and all in it
            self._packets = packets
            set_border_subtitle(self, packets)

    def show_delay(self, p50_ms: float, p99_ms: float, measured: bool = True) -> None:
        """What the engine measured frames to spend in this direction's links: median and
        99th percentile of latency + jitter + queue (beside the Latency set above), on a
        millisecond scale that is at least the latency and jitter set."""
        figure = delay_pair(p50_ms, p99_ms) if measured else "-"
        spark = self.sparks["delay"]
        spark.least = max(1.0, self.link.latency + self.link.jitter)
        spark.push(p99_ms, figure, scale_text=compact_ms(spark.ceiling_for(None, p99_ms)))

    def show_rtt(self, set_ms: float, measured_ms: float | None) -> None:
        """The round trip set (both directions' latency) beside the one measured (both
        directions' median delays): the same on both panels, the set one as the Latency
        control reads (`2.02 s`, never `2020 ms` beside a measured `2.07 s`)."""
        measured = "-" if measured_ms is None else duration_text(measured_ms)
        rtt_set = DURATION.format(set_ms)
        self.rtt.update([f"RTT set {rtt_set} · measured {measured}",
                         f"RTT {rtt_set} · did {measured}"])  # fmt: skip

    def show_stall(self, note: str) -> None:
        """Why the direction stands still (after an extreme setting), or "" for nothing."""
        self.stall.show(note)
        if self.stall.has_class("-shown") != bool(note):
            self.stall.set_class(bool(note), "-shown")
            self._fit()
            self.call_after_refresh(self._fit)  # the rows it wraps to, once laid out

    def show_saturated(self, per_second: float) -> None:
        """Frames a second the engine itself dropped, unable to take them (0: the line goes)."""
        text = f"Engine saturated: {rate_figure(per_second)} dropped" if per_second > 0 else ""
        self.saturated.show(text)
        if self.saturated.has_class("-shown") != bool(text):
            self.saturated.set_class(bool(text), "-shown")
            self._fit()  # a row more or less for the controls, none taken from the graphs
