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
        if self.is_attached:  # toasts go above the line, not over it (see the app's CSS)
            self.screen.set_class(status is not None, "-replay-line")

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
            loops = f", {status.cycle + 1} loops" if status.cycle else ""
            line.append(f" after {status.played:.1f} s played{loops}")
            return line
        if status.finished:
            line.append("■ replay done ", style="bold")
            line.append(f"{self.name_shown}  {status.total} steps")
            return line
        mark = ("❚❚ paused ", "bold yellow") if status.paused else ("▶ replay ", "bold green")
        room = self.content_size.width or 10**6
        for fields, keys in self._wordings(status):
            text = "  ".join(fields)
            if len(mark[0]) + len(text) + len(keys) <= room:
                break
        line.append(*mark)
        line.append(text)
        line.append(keys, style="dim")
        return line

    def _wordings(self, status: ReplayStatus) -> list[tuple[list[str], str]]:
        """The line's words, from the fullest to the shortest: what goes first is when the
        step came and the next's time on the clock, then the name, then the keys' words;
        the state, the step, the time to the next and the keys stay (80 columns)."""
        step = f"step {status.position}/{status.total}"
        soon = [] if status.time_to_next is None else [f"next in {status.time_to_next:.1f} s"]
        late = ""
        if status.next_at is not None and status.time_to_next is not None:
            late = f"next at {status.next_at:.1f} s, in {status.time_to_next:.1f} s"
        loop = [f"loop {status.cycle + 1}" + ("" if status.looping else " (last)")] * bool(
            status.looping or status.cycle
        )
        speed = [f"speed {status.speed:g}x"] * (status.speed != 1)
        name = [self.name_shown] * bool(self.name_shown)
        full = "   t pause/resume · x stop · o loop"
        short = "  t pause x stop o loop"
        return [
            ([*name, step, f"at {status.elapsed:.1f} s", *([late] if late else []), *loop,
              *speed], full),
            ([*name, step, *soon, *loop, *speed], full),
            ([*name, step, *soon, *loop, *speed], short),
            ([step, *soon, *loop, *speed], short),
            ([step, *soon, *loop], short),
        ]  # fmt: skip
