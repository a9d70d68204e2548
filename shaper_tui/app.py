"""The linkshaper TUI: two direction panels of controls and live figures over one engine.

`create_app` is the one way to build it, for the `tui` command and for the tests alike; what
engine it talks to is an `EngineSource`, so the UI code is the same for an attached engine and
for one it started itself.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from engine.model.errors import LinkshaperError
from engine.model.presets import Preset
from engine.model.rates import SampleWindow, direction_rates
from engine.model.spec import DIRECTIONS, PASS_THROUGH, UNLIMITED_RATE, Direction, Spec, SpecError
from engine.model.spec_patch import patch_spec as apply_patch
from engine.protocol.control import ControlError
from engine.protocol.messages import CaptureToFile, StopCaptureToFile
from engine.timelines.recorder import TimelineRecorder, open_new_recording
from engine.timelines.replay import ReplayRunner
from engine.timelines.timeline import StreamedTimeline, TimelineError, open_timeline
from shaper_tui.engine_link import EngineLink
from shaper_tui.engine_source import EngineSource
from shaper_tui.history import History
from shaper_tui.key_help import KeyHelp, key_help
from shaper_tui.link_edits import Field, changes_for
from shaper_tui.messages import (
    EngineAttached,
    EngineDone,
    EngineLost,
    EngineRejected,
    SpecArrived,
    StatsArrived,
)
from shaper_tui.packet_feed import PacketFeed
from shaper_tui.screens.confirm import ConfirmScreen
from shaper_tui.screens.help import HelpScreen
from shaper_tui.screens.history import HistoryScreen
from shaper_tui.screens.packets import PacketsScreen
from shaper_tui.screens.path_prompt import PathPrompt
from shaper_tui.screens.presets import PresetsScreen
from shaper_tui.widgets.choice_control import ChoiceControl
from shaper_tui.widgets.direction_panel import ORDER, TITLES, DirectionPanel
from shaper_tui.widgets.flows_table import FlowsTable
from shaper_tui.widgets.status_bar import StatusBar
from shaper_tui.widgets.timeline_pane import TimelinePane
from shaper_tui.widgets.value_slider import ValueSlider

#: Rates are taken over about this many seconds of samples: steady enough to read, recent
#: enough to see a change within a second.
RATE_WINDOW = 1.0
#: Each direction's figures are drawn at most this often: readable, and cheap to draw.
DISPLAY_INTERVAL = 0.5
#: The bindings that move between controls (listed first in the help).
MOVES = ("app.next", "app.previous", "app.other_panel")
#: How often the replay pane's times move on while a replay runs.
REPLAY_TICK = 0.25
#: How many resets, presets, blocks and replays `u` can go back through.
UNDO_STEPS = 50
#: Names tried for a capture started within the same second as others; past it, the engine
#: says the name is taken.
CAPTURE_NAME_TRIES = 100
#: From these many rows up, each graph is two (then three) rows tall: 8 (12) steps, not 4.
TALL_GRAPHS_AT = 48
TALLER_GRAPHS_AT = 56


def timeline_problem(path: str) -> str | None:
    """Why `path` cannot be replayed (one line), or None: for the prompt, which stays open.
    Checked line by line as `linkshaper replay --check` does, never held whole."""
    try:
        with open_timeline(path) as timeline:
            timeline.check()
    except TimelineError as exc:
        return str(exc)
    return None


class ShaperApp(App[None]):
    TITLE = "linkshaper"
    CSS = """
    Screen {
        layout: vertical;
    }
    #panels {
        height: auto;
    }
    #bottom {
        dock: bottom;
        height: auto;
    }
    #bottom > Footer {
        dock: none;  /* in the dock's flow, under the replay line, not over it */
    }
    """

    #: Every action's key, name and sentence: the footer, the help screen and the command
    #: palette are all made from these (see `key_help`).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "app.focus_next", "Next control", show=False, id="app.next",
                key_display="↓ / j / Tab", tooltip="Move to the next control"),
        Binding("up,k", "app.focus_previous", "Previous control", show=False, id="app.previous",
                key_display="↑ / k / Shift+Tab", tooltip="Move to the previous control"),
        Binding("w", "other_panel", "Other panel", show=False, id="app.other_panel",
                tooltip="The same control in the other direction's panel"),
        Binding("p", "presets", "Presets", id="app.presets",
                tooltip="Presets (3G, 4G, DSL, cable, ...), each with its source"),
        Binding("b", "block", "Block", id="app.block",
                tooltip="Block the link both ways, or unblock it (the rates come back)"),
        Binding("R", "reset", "Reset", id="app.reset", key_display="R",
                tooltip="Reset to pass-through (no limit, no loss, no delay), after asking"),
        Binding("u,ctrl+z", "undo", "Undo", id="app.undo",
                tooltip="Undo the last reset, preset, block or replay: the spec before it"),
        Binding("a", "advanced", "Advanced", show=False, id="app.advanced",
                tooltip="Show or hide each direction's rarer settings: queue discipline and "
                        "ECN, duplication, corruption, reordering, slots, outages"),
        Binding("f", "flush", "Flush", show=False, id="app.flush",
                tooltip="Flush: drop every packet the links hold, queued or delayed (after a "
                "latency set by mistake, say: a lower latency applies to packets that arrive "
                "afterwards)"),
        Binding("r", "record", "Record", id="app.record",
                tooltip="Start recording every change (and stats) to `linkshaper-DATE.jsonl`"),
        Binding("r", "stop_recording", "■ Stop", id="app.stop_recording",
                tooltip="Stop recording and save the file"),
        Binding("c", "capture", "Capture", show=False, id="app.capture",
                tooltip="Capture what the links do to each frame to `linkshaper-DATE.pcapng` "
                "(Wireshark opens it; `linkshaper fates FILE` sums it up)"),
        Binding("c", "stop_capture", "■ Stop capture", show=False, id="app.stop_capture",
                tooltip="Stop the capture and close its file"),
        Binding("t", "timeline", "Replay", id="app.timeline",
                tooltip="Replay a timeline file (the last recording is offered)"),
        Binding("t", "pause_replay", "Pause", id="app.pause_replay",
                tooltip="Pause the replay in progress"),
        Binding("t", "resume_replay", "Resume", id="app.resume_replay",
                tooltip="Resume the paused replay"),
        Binding("x", "stop_replay", "Stop", id="app.stop_replay",
                tooltip="Stop the replay in progress"),
        Binding("v", "packets", "Packets", show=False, id="app.packets",
                tooltip="View the latest packets the links dropped or delayed, with their fate "
                "(a capture runs while it is open)"),
        Binding("g", "history", "History", show=False, id="app.history",
                tooltip="Chart the last ten minutes: rates set and measured, latency, queue "
                "delay, drops by cause, each change marked"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help",
                tooltip="This help: keys and what the figures mean"),
        Binding("q", "quit", "Quit", id="app.quit",
                tooltip="Quit; an engine you attached to keeps running"),
    ]  # fmt: skip

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

    def compose(self) -> ComposeResult:
        # Kept by reference: while a modal screen is up, queries see only that screen.
        self.status_bar = StatusBar(self.source.description, id="status")
        self.panels = {d: DirectionPanel(d, self.spec.link(d)) for d in DIRECTIONS}
        self.flows = FlowsTable(id="flows")
        self.timeline_pane = TimelinePane(id="timeline")
        yield self.status_bar
        with Horizontal(id="panels"):
            yield from self.panels.values()
        yield self.flows
        # The replay line sits on the footer, not under it: both at the bottom, in one dock.
        with Vertical(id="bottom"):
            yield self.timeline_pane
            # The palette's key is in the help; the footer has 80 columns for the rest.
            yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.flows.can_focus = False
        self.query_one("#ingress-rate").focus()
        self.set_interval(1.0, self._tick)
        #: The replay pane's clock, running only while a replay does.
        self.replay_ticks: Timer = self.set_interval(REPLAY_TICK, self._show_replay, pause=True)
        self.replay_worker: Worker[None] | None = None
        self.link.start()

    def on_resize(self, event: events.Resize) -> None:
        height = event.size.height
        for panel in self.query(DirectionPanel):
            panel.set_class(TALL_GRAPHS_AT <= height < TALLER_GRAPHS_AT, "-tall")
            panel.set_class(height >= TALLER_GRAPHS_AT, "-taller")

    def on_unmount(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        if self.recorder is not None:
            self.recorder.close()
        self.link.stop()

    def _tick(self) -> None:
        self.status_bar.sample()
        self.flows.refresh_rows()

    # --- from the engine ------------------------------------------------------------------

    def on_engine_attached(self, message: EngineAttached) -> None:
        self.status_bar.attach(message.info)
        self._show_spec(message.spec)
        if self.recorder is not None:
            self.recorder.spec(message.spec, "attached")
        replay, speed, loop = self.replay_request
        if replay is not None:
            self.replay_request = (None, speed, loop)  # once, not on every reattach
            self._start_replay(replay, speed, loop)

    def on_engine_lost(self, message: EngineLost) -> None:
        self.status_bar.lose(message.reason)

    def on_spec_arrived(self, message: SpecArrived) -> None:
        self.history.spec(message.spec)
        if self.recorder is not None:
            self.recorder.take(message)
        if message.source == self.tag and self.link.busy:
            return  # our own change, overtaken by newer ones on their way
        self._show_spec(message.spec)

    def on_engine_rejected(self, message: EngineRejected) -> None:
        self.notify(message.message, title="Not applied", severity="error", timeout=6)

    def on_engine_done(self, message: EngineDone) -> None:
        self.notify(message.message, timeout=3)

    def on_stats_arrived(self, message: StatsArrived) -> None:
        stats = message.stats
        self.stats_seen += 1
        self.history.sample(stats)
        if self.recorder is not None:
            self.recorder.take(message)
        self.problems[stats.direction] = (
            f"worker {stats.worker_state}"
            if stats.worker_state != "running"
            else stats.interface_problem
        )
        self.status_bar.problem = "; ".join(
            f"{d}: {text}" for d, text in self.problems.items() if text
        )
        window = self.windows[stats.direction]
        window.add(stats)
        self.flows.add_sample(stats)
        # On the worker's clock (the samples' own): figures that change ten times a second
        # cannot be read.
        if stats.at < self.shown_at[stats.direction] + DISPLAY_INTERVAL:
            return
        self.shown_at[stats.direction] = stats.at
        previous, _ = window.pair()
        panel = self.panels[stats.direction]
        panel.show_rates(direction_rates(previous, stats))
        measured = [s for s in window.samples if s.delay_samples]
        if measured:  # the median of the medians, the worst of the 99th percentiles
            medians = sorted(s.delay_p50_ms for s in measured)
            panel.show_delay(medians[len(medians) // 2], max(s.delay_p99_ms for s in measured))
        else:
            panel.show_delay(0.0, 0.0)

    def _show_spec(self, spec: Spec) -> None:
        self.spec = spec
        for direction in DIRECTIONS:
            self.panels[direction].show_link(spec.link(direction))
        self.flows.spec = spec

    # --- from the user --------------------------------------------------------------------

    def _edit(self, direction: Direction, field: Field, value: float | str) -> None:
        changes = changes_for(direction, field, value, self.spec.link(direction))
        self._patch(changes)

    def _patch(self, changes: Mapping[str, Any]) -> None:
        try:
            self.spec = apply_patch(self.spec, changes)
        except SpecError:
            # Not the TUI's to refuse: the engine's gate judges it as it does every door's,
            # and its refusal comes back in its words (EngineRejected). Sent on its own, so
            # that it takes no other change down with it; the controls show what is in force.
            self.link.patch(dict(changes), alone=True)
            self._show_spec(self.spec)
            return
        self.link.patch(dict(changes))
        # Controls that follow from the change (an outage switched on sets its period and
        # length) show it now: the engine's echo of our own change may be skipped as stale
        # when it overtakes the reply to the request.
        self._show_spec(self.spec)

    def _replace(self, spec: Spec, note: str) -> None:
        self.link.set_spec(spec)
        self._show_spec(spec)
        self.notify(note, timeout=3)

    def on_direction_panel_changed(self, event: DirectionPanel.Changed) -> None:
        self._edit(event.direction, event.field, event.value)

    def action_presets(self) -> None:
        def chosen(preset: Preset | None) -> None:
            if preset is not None:
                self._remember(f"preset {preset.name}")
                self._replace(
                    preset.apply(self.spec), f"{preset.name}: {preset.summary} · u to undo"
                )

        self.push_screen(PresetsScreen(self.spec), chosen)

    def action_block(self) -> None:
        links = {d: self.spec.link(d) for d in DIRECTIONS}
        if all(link.rate > 0 for link in links.values()):
            self._remember("block")
            self.unblocked_rates = {d: link.rate for d, link in links.items()}
            self._patch({f"{d}.rate": 0 for d in DIRECTIONS})
            self.notify("Link blocked both ways; b unblocks, u undoes", timeout=3)
        else:
            self._remember("unblock")
            changes = {
                f"{d}.rate": self.unblocked_rates.get(d, UNLIMITED_RATE)
                for d, link in links.items()
                if link.rate == 0
            }
            self._patch(changes)
            self.notify("Link unblocked", timeout=3)
        self._show_spec(self.spec)

    def action_other_panel(self) -> None:
        focused = self.focused
        for direction, other in (("ingress", "egress"), ("egress", "ingress")):
            if focused is not None and focused.id and focused.id.startswith(f"{direction}-"):
                target = f"#{other}-{focused.id.removeprefix(f'{direction}-')}"
                self.screen_stack[0].query_one(target).focus()
                return
        self.query_one("#ingress-rate").focus()

    def action_advanced(self) -> None:
        for panel in self.panels.values():
            panel.toggle_class("-advanced")
        if (
            not self.panels["ingress"].has_class("-advanced")
            and isinstance(self.focused, ValueSlider | ChoiceControl)
            and self.focused.parent is not None
            and self.focused.parent.has_class("advanced")
        ):
            self.query_one("#ingress-rate").focus()  # its control was hidden

    def action_flush(self) -> None:
        self.link.flush()

    def action_reset(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self._remember("reset")
                self._replace(PASS_THROUGH, "Reset to pass-through: u to undo")

        self.push_screen(ConfirmScreen("Reset both directions to pass-through?"), answered)

    def _remember(self, what: str) -> None:
        """Keep the spec in force before `what` replaces it, for `u`."""
        self.undo_steps.append((what, self.spec))
        self.refresh_bindings()

    def action_undo(self) -> None:
        if not self.undo_steps:
            self.notify("Nothing to undo", timeout=2)
            return
        what, spec = self.undo_steps.pop()
        if what == "replay" and self.runner is not None:
            self.runner.stop()
        self._replace(spec, f"Undone: {what}")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Which of the keys that change with the state are live (and in the footer)."""
        recording = self.recorder is not None
        runner = self.runner
        running = runner is not None and not runner.status().finished
        paused = running and runner is not None and runner.paused
        live = {
            "record": not recording,
            "stop_recording": recording,
            "timeline": not running,
            "pause_replay": running and not paused,
            "resume_replay": paused,
            "stop_replay": running,
            "undo": bool(self.undo_steps),
            "capture": not self.status_bar.capturing,
            "stop_capture": bool(self.status_bar.capturing),
        }
        return live.get(action, True)

    def action_record(self) -> None:
        """To a file made now under a name by the second (`-2`, `-3`, ... if taken): the name
        is guessable, and the TUI may run as root, so nothing planted there is written."""
        stem = time.strftime("linkshaper-%Y%m%d-%H%M%S")
        try:
            path, file = open_new_recording(self.record_dir, stem)
        except OSError as exc:
            self.notify(f"Cannot record to {exc.filename or self.record_dir}: {exc.strerror}",
                        severity="error")  # fmt: skip
            return
        self.recorder = TimelineRecorder(path, stats=True, file=file)
        self.recorder.spec(self.spec, "tui-start")
        self.status_bar.recording = str(self.recorder.path)
        self.notify(f"Recording to {self.recorder.path}; r stops", timeout=4)
        self.refresh_bindings()

    def action_capture(self) -> None:
        """The engine writes the file (where it runs: the same machine or container)."""
        path = self._new_capture_path()
        self.link.request(CaptureToFile(path=str(path)))
        self.status_bar.capturing = str(path)
        self.refresh_bindings()

    def _new_capture_path(self) -> Path:
        """A name not taken yet: the engine writes only a file it makes (a capture started
        again within the same second gets `-2`, `-3`, ...)."""
        stem = (self.record_dir / time.strftime("linkshaper-%Y%m%d-%H%M%S")).resolve()
        path = stem.with_name(stem.name + ".pcapng")
        for number in range(2, CAPTURE_NAME_TRIES + 1):
            if not path.exists() and not path.is_symlink():
                break
            path = stem.with_name(f"{stem.name}-{number}.pcapng")
        return path

    def action_stop_capture(self) -> None:
        self.link.request(StopCaptureToFile())
        self.status_bar.capturing = ""
        self.refresh_bindings()

    def action_stop_recording(self) -> None:
        if self.recorder is None:
            return
        self.recorder.close()
        self.notify(f"Recording saved to {self.recorder.path}; t replays it", timeout=5)
        self.last_recording = Path(self.recorder.path)
        self.recorder = None
        self.status_bar.recording = ""
        self.refresh_bindings()

    def action_timeline(self) -> None:
        def chosen(path: str | None) -> None:
            if path is not None:
                self._start_replay(path, 1.0, False)

        offered = str(self.last_recording) if self.last_recording is not None else ""
        candidates = sorted(str(p) for p in self.record_dir.glob("*.jsonl"))
        self.push_screen(
            PathPrompt("Replay a timeline", "path/to/timeline.jsonl", offered, candidates,
                       check=timeline_problem),
            chosen,
        )  # fmt: skip

    def action_pause_replay(self) -> None:
        if self.runner is not None:
            self.runner.pause()
            self.notify("Replay paused; t resumes", timeout=2)
        self._show_replay()

    def action_resume_replay(self) -> None:
        if self.runner is not None:
            self.runner.resume()
            self.notify("Replay resumed", timeout=2)
        self._show_replay()

    def action_stop_replay(self) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.notify("Replay stopped", timeout=3)
        self._show_replay()

    def _start_replay(self, path: str, speed: float, loop: bool) -> None:
        """The file checked whole first, then read as the steps come due (bounded memory
        whatever its length), as `linkshaper replay` does."""
        try:
            timeline = open_timeline(path)
        except TimelineError as exc:
            self.notify(str(exc), title="Timeline not replayed", severity="error", timeout=8)
            return
        try:
            timeline.check()
            runner = ReplayRunner(
                timeline, partial(self.link.apply_now, source="replay"), self.spec,
                speed=speed, loop=loop,
            )  # fmt: skip
        except TimelineError as exc:
            timeline.close()
            self.notify(str(exc), title="Timeline not replayed", severity="error", timeout=8)
            return
        if self.runner is not None:
            self.runner.stop()
        self._remember("replay")
        self.runner = runner
        self.timeline_pane.name_shown = Path(path).name
        self.replay_worker = self._run_replay(runner, timeline)
        self.replay_ticks.resume()
        self._show_replay()

    @work(thread=True, exclusive=True, group="replay", exit_on_error=False)
    def _run_replay(self, runner: ReplayRunner, timeline: StreamedTimeline) -> None:
        """The replay's steps on time, in a thread of Textual's: they block on the engine.
        A step the engine refuses (or that cannot be resolved) stops it: the reason, naming
        the step, is in the pane (`ReplayStatus.error`) and said once."""
        try:
            runner.run()
        except LinkshaperError as exc:
            self.post_message(EngineRejected(f"replay stopped: {runner.error or exc}"))
        finally:
            timeline.close()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.replay_worker and event.state in (
            WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED,
        ):  # fmt: skip
            self.replay_ticks.pause()
            self._show_replay()

    def _show_replay(self) -> None:
        runner = self.runner
        self.timeline_pane.status = runner.status() if runner is not None else None
        self.timeline_pane.refresh()
        self.refresh_bindings()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_help()))

    def action_packets(self) -> None:
        """The packets view, on a capture of its own while it is open."""
        path = self.source.control_path
        if path is None:
            self.notify("No control socket to capture from", severity="warning")
            return
        try:
            feed = PacketFeed(path)
        except ControlError as exc:
            self.notify(f"Cannot capture: {exc}", severity="error")
            return
        self.push_screen(PacketsScreen(feed))

    def action_history(self) -> None:
        self.push_screen(HistoryScreen(self.history))

    def key_help(self) -> list[KeyHelp]:
        """The keys of the controls, then the app's, then the command palette's."""
        palette = Binding(self.COMMAND_PALETTE_BINDING, "command_palette", "Commands",
                          tooltip="The command palette: every action by name")  # fmt: skip
        moving = [b for b in self.BINDINGS if isinstance(b, Binding) and b.id in MOVES]
        acting = [b for b in self.BINDINGS if not isinstance(b, Binding) or b.id not in MOVES]
        controls = [*ValueSlider.BINDINGS, *ChoiceControl.BINDINGS]
        return key_help([*moving, *controls, *acting, palette], self.get_key_display)

    def action_edit(self, control_id: str) -> None:
        """Focus a control and ask for its exact value (from the command palette)."""
        widget = self.screen_stack[0].query_one(f"#{control_id}")
        hidden = widget.parent is not None and widget.parent.has_class("advanced")
        if hidden and not self.panels["ingress"].has_class("-advanced"):
            self.action_advanced()
        widget.focus()
        if isinstance(widget, ValueSlider):
            widget.action_prompt()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for entry in key_help(self.BINDINGS, self.get_key_display):
            if (
                not entry.action.startswith("app.")
                and entry.action != "quit"
                and self.check_action(entry.action, ()) is not False
            ):
                yield SystemCommand(entry.description, f"{entry.tooltip} ({entry.keys})",
                                    partial(self.run_action, entry.action))  # fmt: skip
        for direction in DIRECTIONS:
            for field in ORDER:
                name = f"{TITLES[direction].split()[0]} {field.replace('_', ' ')}"
                yield SystemCommand(
                    f"Set {name}",
                    f"Focus {name} and type a value",
                    partial(self.action_edit, f"{direction}-{field}"),
                    discover=False,
                )


def create_app(
    source: EngineSource,
    tag: str | None = None,
    *,
    replay: str | None = None,
    speed: float = 1.0,
    loop: bool = False,
    record_dir: str = ".",
) -> ShaperApp:
    """The app on `source`; the CLI and the tests build it here."""
    return ShaperApp(source, tag, replay=replay, speed=speed, loop=loop, record_dir=record_dir)
