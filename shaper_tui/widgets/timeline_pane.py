"""One line about the replay in progress: where it is, the next step and the time to it. The
app puts it right above the footer (see `ShaperApp.compose`)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from engine.timelines.replay import ReplayStatus
from shaper_tui.refusals import plain_refusal


class TimelinePane(Static):
    DEFAULT_CSS = """
    TimelinePane {
        height: 1;
        background: $boost;
        padding: 0 1;
        display: none;
    }
    TimelinePane.-active {
        display: block;
    }
    """

    status: reactive[ReplayStatus | None] = reactive(None)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.name_shown = ""

    def watch_status(self, status: ReplayStatus | None) -> None:
        self.set_class(status is not None, "-active")

    def render(self) -> Text:
        status = self.status
        line = Text()
        if status is None:
            return line
        if status.error is not None:  # a step refused: why, in place of where it got to
            line.append("■ replay stopped ", style="bold red")
            line.append(f"{self.name_shown}: {plain_refusal(status.error)}")
            return line
        if status.stopped:  # where it got to; no next step, no keys that no longer apply
            line.append("■ replay stopped ", style="bold")
            line.append(f"{self.name_shown}  at step {status.position}/{status.total}")
            line.append(f" after {status.elapsed:.1f} s")
            return line
        if status.finished:
            line.append("■ replay done ", style="bold")
            line.append(f"{self.name_shown}  {status.total} steps")
            return line
        if status.paused:
            line.append("❚❚ paused ", style="bold yellow")
        else:
            line.append("▶ replay ", style="bold green")
        line.append(f"{self.name_shown}  step {status.position}/{status.total}")
        line.append(f"  at {status.elapsed:.1f} s")
        if status.next_at is not None and status.time_to_next is not None:
            line.append(f"  next at {status.next_at:.1f} s, in {status.time_to_next:.1f} s")
        if status.looping or status.cycle:
            line.append(f"  loop {status.cycle + 1}" + ("" if status.looping else " (last)"))
        if status.speed != 1:
            line.append(f"  speed {status.speed:g}x")
        line.append("   t pause/resume · x stop · o loop", style="dim")
        return line
