"""What every part of the TUI shares: the session (spec in force, undo history, recorder,
capture, replay runner: plain state in `session.py`), the engine link, the widgets, and the two
steps every part takes (show a spec, keep one for undo).

`ShaperApp` is made of this and one mixin per job (engine events, spec edits, recording,
replay, palette commands); each mixin reads and writes the state declared here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from textual.app import App
from textual.timer import Timer
from textual.worker import Worker

from engine.model.rates import SampleWindow
from engine.model.spec import DIRECTIONS, Direction, Spec
from engine.timelines.recorder import TimelineRecorder
from engine.timelines.replay import ReplayRunner
from shaper_tui.engine_link import EngineLink
from shaper_tui.engine_source import EngineSource
from shaper_tui.history import History
from shaper_tui.link_figures import LinkFigures
from shaper_tui.screens.held_toasts import HeldToast
from shaper_tui.session import Change, Session
from shaper_tui.widgets.direction_panel import DirectionPanel
from shaper_tui.widgets.flows_table import FlowsTable
from shaper_tui.widgets.status_bar import StatusBar
from shaper_tui.widgets.timeline_pane import TimelinePane

#: Rates are taken over about this many seconds of samples: steady enough to read, recent
#: enough to see a change within a second.
RATE_WINDOW = 1.0


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
        #: The spec, undo history, recorder, capture and replay: plain state (session.py).
        self.session = Session()
        self.tag = tag or f"tui:{os.getpid()}"
        self.link = EngineLink(source, self.post_message, self.tag)
        self.windows = {d: SampleWindow(RATE_WINDOW) for d in DIRECTIONS}
        #: What each direction did since its settings changed (set beside did).
        self.figures = LinkFigures(self.windows)
        self.stats_seen = 0
        self.problems: dict[Direction, str] = {d: "" for d in DIRECTIONS}
        self._restart_said: set[Direction] = set()
        #: Toasts asked for while a prompt is open, shown when it closes (held_toasts.py).
        self.held_toasts: list[HeldToast] = []
        #: When each direction's figures were last drawn (see DISPLAY_INTERVAL).
        self.shown_at: dict[Direction, float] = dict.fromkeys(DIRECTIONS, float("-inf"))

    # The session's state, under the names the mixins use.
    @property
    def spec(self) -> Spec:
        return self.session.spec

    @spec.setter
    def spec(self, spec: Spec) -> None:
        self.session.spec = spec

    @property
    def recorder(self) -> TimelineRecorder | None:
        return self.session.recorder

    @recorder.setter
    def recorder(self, recorder: TimelineRecorder | None) -> None:
        self.session.recorder = recorder

    @property
    def runner(self) -> ReplayRunner | None:
        return self.session.runner

    @runner.setter
    def runner(self, runner: ReplayRunner | None) -> None:
        self.session.runner = runner

    @property
    def last_recording(self) -> Path | None:
        return self.session.last_recording

    @last_recording.setter
    def last_recording(self, path: Path | None) -> None:
        self.session.last_recording = path

    @property
    def blocked(self) -> bool:
        """Whether a direction's rate is 0: then `b` unblocks."""
        return any(self.spec.link(d).rate <= 0 for d in DIRECTIONS)

    @property
    def unblocked_rates(self) -> dict[Direction, int]:
        return self.session.unblocked_rates

    @unblocked_rates.setter
    def unblocked_rates(self, rates: dict[Direction, int]) -> None:
        self.session.unblocked_rates = rates

    def _show_spec(self, spec: Spec) -> None:
        blocked_before = self.blocked
        self.spec = spec
        if self.blocked != blocked_before:
            self.refresh_bindings()  # `b Block` or `b Unblock` in the footer
        for direction in DIRECTIONS:
            self.panels[direction].show_link(spec.link(direction))
        self.flows.spec = spec

    def _remember(
        self, what: str, after: Spec | None, key: str | None = None, old: str = "", new: str = ""
    ) -> None:
        """Keep the spec in force before `what` makes it `after` (None: not known yet, a
        replay), for `u` (a burst on one control, `key`, is one step; one that changes
        nothing is not kept: see `UndoHistory.record`)."""
        self.session.history.record(
            Change(what, self.spec, key=key, at=time.monotonic(), old=old, new=new, after=after)
        )
        self.refresh_bindings()
