"""The linkshaper TUI: two direction panels of controls and live figures over one engine.

`create_app` is the one way to build it, for the `tui` command and for the tests alike; what
engine it talks to is an `EngineSource`, so the UI code is the same for an attached engine and
for one it started itself.
"""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel

from engine.model.spec import DIRECTIONS
from engine.protocol.control import ControlError
from shaper_tui import bindings, textual_fixes
from shaper_tui.commands import PaletteCommands
from shaper_tui.engine_events import EngineEvents
from shaper_tui.engine_source import EngineSource
from shaper_tui.focus_chain import keep_focus_chain
from shaper_tui.key_order import KeyOrder
from shaper_tui.packet_feed import PacketFeed
from shaper_tui.recording import RecordingActions
from shaper_tui.replay_actions import REPLAY_TICK, ReplayActions
from shaper_tui.screens.held_toasts import HeldToast, toast_held
from shaper_tui.screens.help import HelpScreen
from shaper_tui.screens.history import HistoryScreen
from shaper_tui.screens.packets import PacketsScreen
from shaper_tui.spec_edits import SpecEdits
from shaper_tui.widgets.choice_control import ChoiceControl
from shaper_tui.widgets.direction_panel import DirectionPanel
from shaper_tui.widgets.flows_table import FlowsTable
from shaper_tui.widgets.key_footer import KeyFooter
from shaper_tui.widgets.status_bar import StatusBar
from shaper_tui.widgets.timeline_pane import TimelinePane
from shaper_tui.widgets.value_slider import ValueSlider

#: The app's actions that work over every screen; the rest act on the main screen only.
#: How often the engine's liveness is checked, how long it may say nothing before the status
#: bar says so (it reports ten times a second), and how long a change of ours may wait for its
#: answer before it is marked as not yet in force (a normal one is answered in milliseconds).
LIVENESS_TICK = 0.5
SILENT_SECONDS = 3.0
APPLYING_SECONDS = 0.5
EVERYWHERE = frozenset({"help", "quit", "command_palette"})


class ShaperApp(
    KeyOrder, EngineEvents, SpecEdits, RecordingActions, ReplayActions, PaletteCommands
):
    """The layout and the keys; each job is a mixin of its own over the state they share
    (`ShaperState`): typed keys in order, engine events, spec edits, recording, replay, palette
    commands."""

    TITLE = "linkshaper"
    #: The screen's height class: the flows table gets more rows on a taller terminal; the
    #: panels (and their graphs) take the rest (see the CSS).
    #: (Textual declares it `ClassVar[...] | None`, which mypy reads as an instance variable.)
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [  # type: ignore[misc]
        (0, "-short"),
        (32, "-medium"),
        (48, "-tall"),
    ]
    CSS = """
    Screen {
        layout: vertical;
    }
    #panels {
        height: 1fr;
    }
    Screen.-short #flows {
        max-height: 6;
    }
    Screen.-medium #flows {
        max-height: 10;
    }
    Screen.-tall #flows {
        max-height: 16;
    }
    #bottom {
        dock: bottom;
        height: auto;
    }
    Screen.-replay-line ToastRack {
        margin-bottom: 2;  /* above the replay line and the footer, covering neither */
    }
    #bottom > Footer {
        dock: none;  /* in the dock's flow, under the replay line, not over it */
    }
    """
    BINDINGS = bindings.BINDINGS
    MOVE_CONTROLS = (ValueSlider, ChoiceControl)

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
            yield KeyFooter()

    def on_mount(self) -> None:
        self.flows.can_focus = False
        keep_focus_chain(self.screen)  # after the last `can_focus` change, which it ignores
        self.query_one("#ingress-rate").focus()
        self.set_interval(1.0, self._tick)
        self.set_interval(LIVENESS_TICK, self._check_liveness)
        self.replay_ticks = self.set_interval(REPLAY_TICK, self._show_replay, pause=True)
        self.replay_worker = None
        self.link.start()

    def on_unmount(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        if self.recorder is not None:
            self.recorder.close()
        self.link.stop()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A toast of plain text unless the caller says its words are markup: ours come from
        the engine, exceptions and paths, whose `[...]` Textual read as markup, so a refusal
        such as `[type=less_than_equal, input_value=2.0]` hid the body or raised."""
        toast = HeldToast(message, title, severity, timeout, markup)
        if toast_held(self, toast, self.held_toasts):
            return  # shown when the prompt closes: never over its frame
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def action_help_quit(self) -> None:
        """Textual's Ctrl+C hint, its `[b]` rendered: its words are Textual's own, so markup."""
        for key, active in self.active_bindings.items():
            if active.binding.action in ("quit", "app.quit"):
                self.notify(f"Press [b]{key}[/b] to quit the app", title="Do you want to quit?",
                            markup=True)  # fmt: skip
                return

    def _check_liveness(self) -> None:
        """Say so when the engine stops answering (no report, no reply for SILENT_SECONDS),
        and when a change of ours waits for its answer longer than a blink: until then the
        controls show a value that is not in force."""
        bar = self.status_bar
        quiet = time.monotonic() - self.link.last_heard
        bar.silent = int(quiet) if bar.attached and quiet >= SILENT_SECONDS else 0
        bar.applying = self.link.unanswered_for() >= APPLYING_SECONDS

    def _tick(self) -> None:
        self.status_bar.sample()
        self.flows.refresh_rows()

    def action_other_panel(self) -> None:
        focused = self.focused
        for direction, other in (("ingress", "egress"), ("egress", "ingress")):
            if focused is not None and focused.id and focused.id.startswith(f"{direction}-"):
                target = f"#{other}-{focused.id.removeprefix(f'{direction}-')}"
                # At once, not on a later turn (`focus()`): keys in the same burst move on
                # from here (`w k k k`).
                self.set_focus(self.screen_stack[0].query_one(target))
                return
        self.set_focus(self.query_one("#ingress-rate"))

    def action_advanced(self) -> None:
        for panel in self.panels.values():
            panel.toggle_class("-advanced")
        if (
            not self.panels["ingress"].has_class("-advanced")
            and isinstance(self.focused, ValueSlider | ChoiceControl)
            and self.focused.parent is not None
            and self.focused.parent.has_class("advanced")
        ):
            self.set_focus(self.query_one("#ingress-rate"))  # its control was hidden
        # The controls are laid out anew: each panel from its top (an upload scrolled down to
        # its advanced settings kept its offset, its Rate and Loss hidden), the focused one
        # in view.
        self.call_after_refresh(self._controls_from_top)

    def _controls_from_top(self) -> None:
        for panel in self.panels.values():
            panel.query_one(".controls").scroll_home(animate=False, immediate=True)
        if self.focused is not None:
            self.focused.scroll_visible(animate=False, immediate=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Which of the keys that change with the state are live (and in the footer).
        Over the packets view or the history only help and quit are: every screen's footer
        is its own."""
        if action not in EVERYWHERE and not self._on_main_screen():
            return False
        recording = self.recorder is not None
        runner = self.runner
        status = runner.status() if runner is not None else None
        running = status is not None and not (status.finished or status.stopped)
        paused = running and runner is not None and runner.paused
        live = {
            "block": not self.blocked,
            "unblock": self.blocked,
            "record": not recording,
            "stop_recording": recording,
            "timeline": not running,
            "pause_replay": running and not paused,
            "resume_replay": paused,
            "stop_replay": running,
            "undo": self.session.history.can_undo,
            "redo": self.session.history.can_redo,
            "capture": not self.status_bar.capturing,
            "stop_capture": bool(self.status_bar.capturing),
        }
        return live.get(action, True)

    def _on_main_screen(self) -> bool:
        """Is the main screen the one in use (under any dialog: a prompt, the palette)?"""
        under = next((s for s in reversed(self.screen_stack) if not s.is_modal), None)
        return under is None or under is self.screen_stack[0]

    def action_help(self) -> None:
        start = {"PacketsScreen": "Packets view", "HistoryScreen": "History"}
        self.push_screen(
            HelpScreen(self.help_sections(), start.get(type(self.screen).__name__, ""))
        )

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
    textual_fixes.apply()
    return ShaperApp(source, tag, replay=replay, speed=speed, loop=loop, record_dir=record_dir)
