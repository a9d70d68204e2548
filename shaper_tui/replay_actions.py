"""Replaying a timeline file against the engine: choose, start, pause, resume and stop, and the
replay pane's clock while it runs."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from textual import work
from textual.worker import Worker, WorkerState

from engine.model.errors import LinkshaperError
from engine.timelines.reading import StreamedTimeline, open_timeline
from engine.timelines.replay import ReplayRunner
from engine.timelines.timeline import TimelineError
from shaper_tui.app_state import ShaperState
from shaper_tui.messages import EngineRejected
from shaper_tui.screens.path_prompt import PathPrompt

#: How often the replay pane's times move on while a replay runs.
REPLAY_TICK = 0.25


def timeline_problem(path: str) -> str | None:
    """Why `path` cannot be replayed (one line), or None: for the prompt, which stays open.
    Checked line by line as `linkshaper replay --check` does, never held whole."""
    try:
        with open_timeline(path) as timeline:
            timeline.check()
    except TimelineError as exc:
        return str(exc)
    return None


def newest_first(directory: Path) -> list[Path]:
    """The `*.jsonl` in `directory`, newest first: `t` offers the newest even in a new
    session, where this TUI has recorded nothing yet."""

    def modified(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # gone meanwhile
            return 0.0

    return sorted(directory.glob("*.jsonl"), key=modified, reverse=True)


#: How long the line saying how a replay ended (stopped, done, refused) stays.
END_LINE_SECONDS = 10.0


class ReplayActions(ShaperState):
    """The replay keys and the thread that runs a replay's steps."""

    #: The replay whose end line was cleared (its status no longer shown).
    _line_cleared_for: ReplayRunner | None = None

    def action_timeline(self) -> None:
        def chosen(path: str | None) -> None:
            if path is not None:
                self._start_replay(self._recording(path), 1.0, self.loop_replays)

        recordings = newest_first(self.record_dir)
        last = self.last_recording or (recordings[0] if recordings else None)
        empty = f"No path given, and no recording in {self.record_dir}: type one, or Esc"
        # Whole paths, and the names alone (as `ls` of the record directory shows them).
        candidates = sorted({*map(str, recordings), *(p.name for p in recordings)})
        self.push_screen(
            PathPrompt("Replay a timeline", "path/to/timeline.jsonl",
                       "" if last is None else str(last), candidates,
                       check=lambda path: timeline_problem(self._recording(path)), empty=empty),
            chosen,
        )  # fmt: skip

    def _recording(self, path: str) -> str:
        """`path`, or the record directory's file of that name when `path` is a bare name
        that is not a file here (a completed recording's name)."""
        bare = Path(path)
        in_dir = self.record_dir / bare
        if len(bare.parts) == 1 and not bare.exists() and in_dir.is_file():
            return str(in_dir)
        return path

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

    def action_toggle_loop(self) -> None:
        """Loop the replay in progress (from the end of its cycle) and those to come, or not."""
        self.loop_replays = not self.loop_replays
        runner = self.runner
        running = runner is not None and not runner.status().finished
        if running and runner is not None and self.loop_replays and runner.duration <= 0:
            self.notify("This timeline lasts 0 s: it cannot loop", severity="warning")
        elif running and runner is not None:
            runner.loop = self.loop_replays
        what = "in a loop" if self.loop_replays else "once"
        self.notify(f"Replays run {what}; o toggles", timeout=3)
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
        self._remember("replay", None)
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
        status = runner.status() if runner is not None else None
        shown = self.timeline_pane.status
        if runner is not None and runner is self._line_cleared_for:
            status = None  # its end was said long enough: the row goes back to the screen
        # Where it was stopped stays said: its clock does not run on.
        if not (status is not None and status.stopped and shown is not None and shown.stopped):
            self.timeline_pane.status = status
            self.timeline_pane.refresh()
            ended = status is not None and (status.stopped or status.finished or status.error)
            if ended and runner is not None:
                self.set_timer(END_LINE_SECONDS, partial(self._clear_end_line, runner))
        self.refresh_bindings()

    def _clear_end_line(self, runner: ReplayRunner) -> None:
        """The line that said how a replay ended goes, END_LINE_SECONDS after (a row of an
        80x24 screen is not kept for it); unless another replay started meanwhile."""
        if runner is self.runner:
            self._line_cleared_for = runner
            self._show_replay()
