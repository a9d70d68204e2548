"""One line: is the engine there, which interfaces, and what it costs (CPU, memory)."""

from __future__ import annotations

import time

import psutil
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from engine.protocol.messages import Info


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        dock: top;
        height: 1;
        background: $panel;
        padding: 0 1;
    }
    """

    #: None until the first attempt has an answer.
    attached: reactive[bool | None] = reactive(None)
    message: reactive[str] = reactive("connecting…")
    figures: reactive[str] = reactive("")
    #: The file being recorded to, or "".
    recording: reactive[str] = reactive("")
    #: The file a capture is written to, or "".
    capturing: reactive[str] = reactive("")
    #: Why a direction does not forward (an interface down or missing), or "".
    problem: reactive[str] = reactive("")
    #: The last worker the engine restarted, and when (`Download worker restarted 16:30:02`).
    restarted: reactive[str] = reactive("")
    #: Whole seconds the attached engine has said nothing (0 while it answers).
    silent: reactive[int] = reactive(0)
    #: A change of ours waits for the engine's answer: not yet in force.
    applying: reactive[bool] = reactive(False)

    def __init__(self, source: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self._processes: list[psutil.Process] = []
        self._own = psutil.Process()
        self._own.cpu_percent(None)
        self._recording_since = 0.0
        #: Whether an engine was ever attached: if not, none was lost.
        self.was_attached = False
        self.short_figures = ""
        #: The attached engine's supervisor (a new one clears the `↻` mark of the old).
        self.engine_pid = 0

    def watch_recording(self, recording: str) -> None:
        self._recording_since = time.monotonic() if recording else 0.0

    def attach(self, info: Info) -> None:
        self.attached = True
        self.was_attached = True
        if info.supervisor_pid != self.engine_pid:
            self.restarted = ""  # another engine: the restart marked was the one before's
        self.engine_pid = info.supervisor_pid
        self.message = f"{info.outer} ↔ {info.inner}"
        pids = [info.supervisor_pid, *info.worker_pids.values()]
        self._processes = []
        for pid in pids:
            if pid > 0:
                try:
                    process = psutil.Process(pid)
                    process.cpu_percent(None)  # the first call only starts the measurement
                    self._processes.append(process)
                except psutil.Error:
                    continue
        self.figures = ""
        self.silent = 0

    def lose(self, reason: str) -> None:
        self.attached = False
        self.silent = 0
        self.message = reason
        self._processes = []
        self.figures = ""

    def sample(self) -> None:
        """CPU (% of one core, summed over the engine's processes, and this process's own)
        and the engine's resident memory."""
        if not self._processes:
            return
        cpu = 0.0
        rss = 0
        for process in self._processes:
            try:
                cpu += process.cpu_percent(None)
                rss += process.memory_info().rss
            except psutil.Error:
                continue
        own = self._own.cpu_percent(None)
        #: The same, shorter, for a narrow terminal (see `render`).
        self.short_figures = f"CPU engine {cpu:.0f}% tui {own:.0f}%"
        self.figures = (
            f"CPU engine {cpu:.0f}% · tui {own:.0f}% of a core · engine {rss / 2**20:.0f} MB"
        )

    def render(self) -> Text:
        line = Text()
        room = self.content_size.width or 10**6
        if self.recording:
            # How long only: the file's path is in the toast (and saved with `r`), and would
            # push the figures off an 80-column line.
            seconds = int(time.monotonic() - self._recording_since)
            line.append(f"● REC {seconds // 60:02d}:{seconds % 60:02d}  ", style="bold red")
        if self.capturing:
            line.append("● CAP  ", style="bold magenta")
        if self.attached and self.silent:
            line.append(f"◌ engine not answering for {self.silent} s ", style="bold yellow")
            line.append(self.message)
        elif self.attached:
            line.append("● attached ", style="bold green")
            line.append(self.message)
        elif self.attached is None:
            line.append("○ ", style="bold yellow")
            line.append(self.message)
        else:
            mark = "✖ engine lost " if self.was_attached else "○ not attached "
            line.append(mark, style="bold red" if self.was_attached else "bold yellow")
            line.append_text(self._why_not(room - line.cell_len))
        if self.applying:
            line.append("  applying…", style="bold yellow")
        if self.problem:
            line.append(f"  ⚠ {self.problem}", style="bold red")
        if self.restarted:
            line.append(f"  ↻ {self.restarted}", style="bold yellow")
        # What does not fit the width is left out whole, never cut: the figures in full, else
        # shorter, then the engine's description.
        choices = [(self.figures, self.short_figures)] if self.figures else []
        for texts in (*choices, (self.source,)):
            extras = [Text(f"  │ {text}", style="dim") for text in texts]
            fits = [e for e in extras if line.cell_len + e.cell_len <= room]
            if fits:
                line.append_text(fits[0])
        return line

    def _why_not(self, room: int) -> Text:
        """Why no engine is attached and how to start one, in `room` cells: the first wording
        that fits, from the longest (the reason up to its first `: `, the path it names kept
        before the hint; the hint shortened or left out), so no word is cut at the edge."""
        asked = self.source.startswith("control ") and not self.was_attached
        hint = "start one: linkshaper run OUTER INNER, or tui --demo" if asked else ""
        reason = self.message.partition(": ")[0]
        named = list(dict.fromkeys([self.message, reason]))  # the path kept
        hints = [hint, "tui --demo starts one", ""] if hint else [""]
        wordings = [(said, told) for said in named for told in hints if told]
        wordings += [(said, "") for said in named]
        wordings += [(reason.split(" at ")[0], told) for told in hints]  # the path left out
        for said, told in wordings:
            text = f"· {said} · {told}" if told else f"· {said}"
            if len(text) <= room:
                return Text(text)
        return Text(f"· {wordings[-1][0]}"[: max(0, room - 1)] + "…")
