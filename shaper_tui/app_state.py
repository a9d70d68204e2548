"""What every part of the TUI shares: the spec in force, the engine link, the recorder and the
replay runner, the widgets, and the two steps every part takes (show a spec, keep one for undo).

`ShaperApp` is made of this and one mixin per job (engine events, spec edits, recording,
replay, palette commands); each mixin reads and writes the state declared here.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

from textual.app import App
from textual.timer import Timer
from textual.worker import Worker

from engine.model.rates import SampleWindow
from engine.model.spec import DIRECTIONS, PASS_THROUGH, Direction, Spec
from engine.timelines.recorder import TimelineRecorder
from engine.timelines.replay import ReplayRunner
from shaper_tui.engine_link import EngineLink
from shaper_tui.engine_source import EngineSource
from shaper_tui.history import History
from shaper_tui.widgets.direction_panel import DirectionPanel
from shaper_tui.widgets.flows_table import FlowsTable
from shaper_tui.widgets.status_bar import StatusBar
from shaper_tui.widgets.timeline_pane import TimelinePane

#: Rates are taken over about this many seconds of samples: steady enough to read, recent
#: enough to see a change within a second.
RATE_WINDOW = 1.0
#: How many resets, presets, blocks and replays `u` can go back through.
UNDO_STEPS = 50


class ShaperState(App[None]):
    """The app's state; the widgets are made in `ShaperApp.compose`, the timers in `on_mount`."""

    status_bar: StatusBar
    panels: dict[Direction, DirectionPanel]
    flows: FlowsTable
    timeline_pane: TimelinePane
    #: The replay pane's clock, running only while a replay does.
    replay_ticks: Timer
    replay_worker: Worker[None] | None

    def __init__(
        self,
        source: EngineSource,
        tag: str | None = None,
        *,
        replay: str | None = None,
        speed: float = 1.0,
        loop: bool = False,
        record_dir: str = ".",
    ) -> None:
        super().__init__()
        self.source = source
        self.replay_request = (replay, speed, loop)
        #: Whether a replay started with `t` loops (`o` toggles it, and the one running).
        self.loop_replays = loop
        self.record_dir = Path(record_dir)
        #: The last minutes of stats and changes, for the history screen.
        self.history = History()
        self.recorder: TimelineRecorder | None = None
        self.runner: ReplayRunner | None = None
        self.tag = tag or f"tui:{os.getpid()}"
        self.spec: Spec = PASS_THROUGH
        self.link = EngineLink(source, self.post_message, self.tag)
        self.windows = {d: SampleWindow(RATE_WINDOW) for d in DIRECTIONS}
        self.unblocked_rates: dict[Direction, int] = {}
        self.stats_seen = 0
        self.problems: dict[Direction, str] = {d: "" for d in DIRECTIONS}
        #: When each direction's figures were last drawn (see DISPLAY_INTERVAL).
        self.shown_at: dict[Direction, float] = dict.fromkeys(DIRECTIONS, float("-inf"))
        #: (what was done, the spec before it), newest last: what `u` goes back through.
        self.undo_steps: deque[tuple[str, Spec]] = deque(maxlen=UNDO_STEPS)
        self.last_recording: Path | None = None

    def _show_spec(self, spec: Spec) -> None:
        self.spec = spec
        for direction in DIRECTIONS:
            self.panels[direction].show_link(spec.link(direction))
        self.flows.spec = spec

    def _remember(self, what: str) -> None:
        """Keep the spec in force before `what` replaces it, for `u`."""
        self.undo_steps.append((what, self.spec))
        self.refresh_bindings()
