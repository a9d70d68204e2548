"""Recording a timeline (in the TUI) and capturing frames (by the engine) to new files: the
`r` and `c` keys, each a start and a stop."""

from __future__ import annotations

import time
from pathlib import Path

from engine.protocol.messages import CaptureToFile, StopCaptureToFile
from engine.timelines.recorder import TimelineRecorder, open_new_recording
from shaper_tui.app_state import ShaperState
from shaper_tui.record_dir import RecordDirError, private_record_dir

#: Names tried for a capture started within the same second as others; past it, the engine
#: says the name is taken.
CAPTURE_NAME_TRIES = 100


class RecordingActions(ShaperState):
    """Start and stop a recording or a capture."""

    def action_record(self) -> None:
        """To a file made now under a name by the second (`-2`, `-3`, ... if taken): the name
        is guessable, and the TUI may run as root, so nothing planted there is written."""
        stem = time.strftime("linkshaper-%Y%m%d-%H%M%S")
        try:
            path, file = open_new_recording(private_record_dir(self.record_dir), stem)
        except RecordDirError as exc:
            self.notify(str(exc), severity="error")
            return
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
        try:
            private_record_dir(self.record_dir)
        except RecordDirError as exc:
            self.notify(str(exc), severity="error")
            return
        path = self._new_capture_path()
        self.link.request(CaptureToFile(path=str(path)))
        self.session.capture = self.status_bar.capturing = str(path)
        self.refresh_bindings()

    def _new_capture_path(self) -> Path:
        """A name not taken yet: the engine writes only a file it makes (a capture started
        again within the same second gets `-2`, `-3`, ...)."""
        stem = self.record_dir.absolute() / time.strftime("linkshaper-%Y%m%d-%H%M%S")
        path = stem.with_name(stem.name + ".pcapng")
        for number in range(2, CAPTURE_NAME_TRIES + 1):
            if not path.exists() and not path.is_symlink():
                break
            path = stem.with_name(f"{stem.name}-{number}.pcapng")
        return path

    def action_stop_capture(self) -> None:
        self.link.request(StopCaptureToFile())
        self.session.capture = self.status_bar.capturing = ""
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
