"""Set beside did (issue 35, items 4, 11 and 12): each direction's figures of what the link did,
taken since its settings last changed, so that they compare with what is set now.

The measured delay is taken over the last DELAY_WINDOW seconds after the change (a window of
older samples kept a reset to 0 ms reading `41/61 ms` seconds later); the loss share over
what reached the impairments, over up to SHARE_WINDOW seconds (a second's few hundred
packets make a 1 % share read anywhere from 0.3 to 1.7 %); the round trip from both
directions; and a stand-still after an extreme setting is named (engine/model/stalls.py).
"""

from __future__ import annotations

from engine.model.rates import LinkRates, SampleWindow, direction_rates
from engine.model.spec import DIRECTIONS, Direction, LinkSpec, Spec
from engine.model.stalls import StallWatch, stall_note
from engine.model.stats import DirectionStats
from shaper_tui.widgets.direction_panel import DirectionPanel

#: The measured delay is over this many seconds of reports (made after the last change).
DELAY_WINDOW = 2.0
#: The loss share is over at most this many seconds (since the last change).
SHARE_WINDOW = 10.0


class LinkFigures:
    """Both directions' figures, from the app's sample windows (by reference)."""

    def __init__(self, windows: dict[Direction, SampleWindow]) -> None:
        self.windows = windows
        self.links: dict[Direction, LinkSpec | None] = dict.fromkeys(DIRECTIONS)
        self.stalls = {d: StallWatch() for d in DIRECTIONS}
        #: Each direction's median delay as last shown (None: nothing measured lately).
        self.medians: dict[Direction, float | None] = dict.fromkeys(DIRECTIONS)

    def spec(self, spec: Spec) -> None:
        """A spec in force: each direction whose link changed starts its figures again."""
        changed = [d for d in DIRECTIONS if spec.link(d) != self.links[d]]
        for direction in changed:
            self.windows[direction].mark_change()
            self.links[direction] = spec.link(direction)
        if not changed:
            return
        for direction in DIRECTIONS:  # either way's setting stalls TCP both ways
            window = self.windows[direction]
            at = window.samples[-1].at if window.samples else 0.0
            other = next(d for d in DIRECTIONS if d != direction)
            self.stalls[direction].settings(spec.link(direction), at, spec.link(other))

    def delay(self, direction: Direction) -> tuple[float, float] | None:
        """(median of the reports' medians, worst 99th percentile) over DELAY_WINDOW since the
        last change, None while no frame was measured there."""
        measured = [
            s for s in self.windows[direction].since_change(DELAY_WINDOW) if s.delay_samples
        ]
        if not measured:
            return self._unheld(direction)
        medians = sorted(s.delay_p50_ms for s in measured)
        return medians[len(medians) // 2], max(s.delay_p99_ms for s in measured)

    def _unheld(self, direction: Direction) -> tuple[float, float] | None:
        """(0, 0) where frames went out since the change but none was measured: the engine
        measures every frame its links hold, so those went straight through (a reset to
        0 ms reads `0/0 ms`, not `-`); None while nothing went out."""
        since = self.windows[direction].since_change(DELAY_WINDOW)
        first, last = (since[0], since[-1]) if since else (None, None)
        if first is None or last is None or first is last or first.pid != last.pid:
            return None
        went_out = last.total.packets_out > first.total.packets_out
        return (0.0, 0.0) if went_out else None

    def show(self, direction: Direction, panels: dict[Direction, DirectionPanel]) -> None:
        """Draw `direction`'s figures (and the round trip on both panels)."""
        window = self.windows[direction]
        previous, current = window.pair()
        if current is None:
            return
        panel = panels[direction]
        rates = direction_rates(previous, current)
        base, _ = window.span_since_change(SHARE_WINDOW)
        longer = direction_rates(base, current) if base is not None else LinkRates()
        if previous is not None and previous.at < window.changed_at:
            # The last second spans a change: its drops were the old settings' (a share of
            # 4.6 % beside a loss set to 0 %). Drops only since the change, none until then.
            lost = longer if base is not None else LinkRates()
            panel.show_rates(rates, lost.impairment_share if lost.past_queue else 0.0, lost)
        elif rates.lost_drops == 0 and longer.lost_drops > 0:
            # Sparse drops (a blocked link drops a TCP retry every few seconds): the last
            # second often had none, and `Lost 0/s` read beside the stats' `blocked=1.0/s`;
            # they read as their rate since the change instead (`0.3/s`).
            panel.show_rates(rates, longer.impairment_share if longer.past_queue else None,
                             longer)  # fmt: skip
        else:
            panel.show_rates(rates, longer.impairment_share if longer.past_queue else None)
        delay = self.delay(direction)
        panel.show_delay(*(delay or (0.0, 0.0)), measured=delay is not None)
        self.medians[direction] = delay[0] if delay is not None else None
        cause = self.stalls[direction].still(current.at, rates.packets_in)
        panel.show_stall(stall_note(cause) if cause is not None and previous is not None else "")
        panel.show_saturated(saturated_rate(previous, current))
        links = [panel.link for panel in panels.values()]
        both = [self.medians[d] for d in DIRECTIONS]
        measured = None if None in both else sum(m or 0.0 for m in both)
        for each in panels.values():
            each.show_rtt(sum(link.latency for link in links), measured)


def saturated_rate(previous: DirectionStats | None, current: DirectionStats) -> float:
    """Frames a second the engine dropped unread between two samples of one worker."""
    if previous is None or previous.pid != current.pid or current.at <= previous.at:
        return 0.0
    return max(0, current.engine_saturated - previous.engine_saturated) / (current.at - previous.at)
