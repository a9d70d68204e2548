"""What the engine says, shown: the messages `EngineLink` posts (attached, lost, a spec, stats,
a refusal) land here and move the panels, the status bar, the history and the recorder."""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.model.spec import DIRECTIONS, Direction, Spec
from shaper_tui.app_state import ShaperState
from shaper_tui.change_origin import QUIET_SECONDS, what_changed, who_changed
from shaper_tui.messages import (
    EngineAttached,
    EngineDone,
    EngineLost,
    EngineRejected,
    LinkSettled,
    SpecArrived,
    StatsArrived,
    WorkerRestarted,
)
from shaper_tui.refusals import plain_refusal
from shaper_tui.session import SHORT_NAMES
from shaper_tui.undo_fields import field_changes

#: Each direction's figures are drawn at most this often: readable, and cheap to draw.
DISPLAY_INTERVAL = 0.5
#: At most one `Changed by …` toast this often, whoever made the changes.
TOAST_SECONDS = 2.0
#: Sources remembered for QUIET_SECONDS at most (forgotten all at once past this).
MAX_TOLD = 64


class EngineEvents(ShaperState):
    """The handlers of the engine link's messages."""

    #: Made by `ReplayActions`: a replay asked for on the command line starts once attached.
    _start_replay: Callable[[str, float, bool], None]
    #: Changes by others not yet toasted, and when the last toast was.
    _untold: int = 0
    _untold_words: str = ""
    _toast_due: bool = False
    _last_toast: float = float("-inf")
    #: The spec the engine last said is in force (the controls may show newer changes of ours).
    _engine_spec: Spec | None = None
    #: Directions whose worker restart the status bar shows, not yet reported running.
    _restart_said: set[Direction]

    def on_engine_attached(self, message: EngineAttached) -> None:
        self._engine_spec = message.spec
        self._restart_said.clear()
        self.status_bar.attach(message.info)
        self.figures.spec(message.spec)
        self._show_spec(message.spec)
        self.history.spec(message.spec)  # the rate and latency set from the start, in `g`
        if self.recorder is not None:
            self.recorder.spec(message.spec, "attached")
        replay, speed, loop = self.replay_request
        if replay is not None:
            self.replay_request = (None, speed, loop)  # once, not on every reattach
            self._start_replay(replay, speed, loop)

    def on_engine_lost(self, message: EngineLost) -> None:
        self.status_bar.lose(message.reason)

    def on_spec_arrived(self, posted: SpecArrived) -> None:
        # The newest of a burst: one repaint for all; a recording keeps each.
        message, burst = self.link.take_spec(posted)
        self._engine_spec = message.spec
        self.history.spec(message.spec)
        self.figures.spec(message.spec)
        if self.recorder is not None:  # every change of the burst (a replay's step each)
            for arrived in burst:
                self.recorder.take(arrived)
        if message.other is not None:
            changes = field_changes(self.spec, message.spec)
            source, origin = message.other
            self._say_who_changed(source, origin, message.others, what_changed(changes))
            for path in changes:
                self.session.changed_by[path] = source
        if message.source == self.tag and self.link.busy:
            return  # our own change, overtaken by newer ones on their way
        self._show_spec(message.spec)

    def _say_who_changed(self, source: str, origin: str, count: int = 1, what: str = "") -> None:
        """A toast naming who changed the link and what, unless it is our own replay (its line says
        so), the same words were said a moment ago, or any toast was (a flood of changes
        with a new source each is one toast every TOAST_SECONDS, counting them)."""
        runner = self.runner
        ours = runner is not None and not runner.status().finished
        if source == "replay" and origin == "control" and ours:
            return
        words = who_changed(source, origin)
        now = time.monotonic()
        told: dict[str, float] = self.__dict__.setdefault("_told_changes", {})
        if now - told.get(words, float("-inf")) < QUIET_SECONDS:
            return  # said a moment ago, in these words
        if len(told) >= MAX_TOLD:
            told.clear()
        told[words] = now
        self._untold += count
        self._untold_words = f"{words}: {what}" if what else words
        wait = self._last_toast + TOAST_SECONDS - now
        if wait <= 0:
            self._toast_untold()
        elif not self._toast_due:
            self._toast_due = True  # said when the quiet time ends, with the others since
            self.set_timer(wait, self._toast_untold)

    def _toast_untold(self) -> None:
        """The toast for the changes by others not yet told: the latest, and how many."""
        untold, words = self._untold, self._untold_words
        self._untold, self._toast_due, self._last_toast = 0, False, time.monotonic()
        if untold:
            text = words if untold == 1 else f"{untold} changes by others; the latest: {words}"
            self.notify(text, title="The link changed", timeout=4)

    def on_engine_rejected(self, message: EngineRejected) -> None:
        self.notify(plain_refusal(message.message), title="Not applied", severity="error",
                    timeout=6)  # fmt: skip
        if self._engine_spec is not None and not self.link.busy:
            self._show_spec(
                self._engine_spec
            )  # the controls show what is in force, not the refused

    def on_link_settled(self, message: LinkSettled) -> None:
        """Every change of ours answered: the controls show what is in force. The echo of the
        last one may have come while it was still on its way and been skipped as stale; if it
        has not come yet, it comes with nothing on its way and is shown then. After a refusal
        the engine's spec is shown whatever it is (the refused value never stays)."""
        engine_spec = self._engine_spec
        if self.link.busy or engine_spec is None:
            return  # newer changes of ours: they settle in their turn
        if message.refused or message.spec == engine_spec:
            self._show_spec(engine_spec)

    def on_worker_restarted(self, message: WorkerRestarted) -> None:
        """A worker the engine started again: the link was down that way meanwhile and what
        it held is lost. Said once, and marked in the status bar with the time."""
        name = SHORT_NAMES["ingress" if message.direction == "ingress" else "egress"]
        when = time.strftime("%H:%M:%S", time.localtime(message.at))
        self.status_bar.restarted = f"{name} worker restarted {when}"
        if message.direction in DIRECTIONS:
            direction: Direction = "ingress" if message.direction == "ingress" else "egress"
            self._restart_said.add(direction)
            self._show_problem(direction, "restarting", "")  # now older than the restart
        self.notify(f"The {name.lower()} worker {message.cause}; the engine restarted it at "
                    f"{when} (packets it held were lost)", title="Worker restarted",
                    severity="warning", timeout=8)  # fmt: skip

    def _show_problem(self, direction: Direction, state: str, interface: str) -> None:
        """The status bar's one word per direction on why it does not forward: the newest
        state only. A worker's `restarting` after its restart was said is an older report (the
        `↻` mark is the newer state), until a report says it runs; a new `restarting` then
        replaces the `↻` mark of the restart before."""
        if state == "running":
            self._restart_said.discard(direction)
        elif direction in self._restart_said:
            state = "running"  # the restart said is newer than this report
        elif self.status_bar.restarted:
            self.status_bar.restarted = ""  # the worker is down again: that is the news
        self.problems[direction] = f"worker {state}" if state != "running" else interface
        self.status_bar.problem = "; ".join(
            f"{d}: {text}" for d, text in self.problems.items() if text
        )

    def on_engine_done(self, message: EngineDone) -> None:
        text = message.message
        if self.session.capture and text == f"capturing to {self.session.capture}":
            text += "; c stops"  # the key, as the recording's toast gives it
        self.notify(text, timeout=3)

    def on_stats_arrived(self, message: StatsArrived) -> None:
        self.link.stats_taken()
        stats = message.stats
        self.stats_seen += 1
        self.history.sample(stats)
        if self.recorder is not None:
            self.recorder.take(message)
        self._show_problem(stats.direction, stats.worker_state, stats.interface_problem)
        window = self.windows[stats.direction]
        window.add(stats)
        self.flows.add_sample(stats)
        # On the worker's clock (the samples' own): figures that change ten times a second
        # cannot be read.
        if stats.at < self.shown_at[stats.direction] + DISPLAY_INTERVAL:
            return
        # The other direction is drawn in the same frame if it has a report not yet drawn:
        # each on its own clock made twice the frames (most of the TUI's steady cost).
        for direction in DIRECTIONS:
            samples = self.windows[direction].samples
            if samples and samples[-1].at > self.shown_at[direction]:
                self.shown_at[direction] = samples[-1].at
                self.figures.show(direction, self.panels)
