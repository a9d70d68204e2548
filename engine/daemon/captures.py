"""Captures: what the workers are told to capture, and a capture written to a file.

Clients capture through the control server (a subscription with a capture request, or a feed
read in this process); the workers send their frames' fates only while someone captures, cut
at the longest snaplen asked. A capture to a file (CaptureToFile, the TUI's `c`) is a feed
read by a thread of the engine's that writes pcapng.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from engine.daemon.worker_pool import WorkerPool
from engine.model.fates import wanted_records
from engine.model.spec import DIRECTIONS, Direction
from engine.protocol.control import ControlError
from engine.protocol.control_server import ControlServer
from engine.protocol.messages import (
    CaptureLost,
    CaptureRequest,
    CaptureToFile,
    Done,
    Error,
    FateRecords,
    Message,
    StartCapture,
    StopCapture,
    encode,
)
from engine.protocol.subscribers import CaptureFeed

log = logging.getLogger("linkshaper")


class FileCapture:
    """A capture written to a pcapng file by a thread of the engine's (CaptureToFile)."""

    def __init__(self, path: str, feed: CaptureFeed) -> None:
        # Here, not at the top: scapy costs the engine 0.6 s to start and tens of MB.
        from engine.captures.pcapng import CaptureWriter

        self.path = path
        self._feed = feed
        try:
            # A new file only: the name (the TUI's, by the second) may be guessed.
            self._writer = CaptureWriter(path, new_file=True)
        except OSError:
            feed.close()
            raise
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="capture-file")
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            message = self._feed.get(0.2)
            if isinstance(message, FateRecords):
                self._writer.lost_records(message.lost)
                capture = self._feed.capture
                assert capture is not None
                records = wanted_records(message.data, message.labels, capture.label,
                                         capture.drops_only)  # fmt: skip
                self._writer.write(message.direction, records)
            elif isinstance(message, CaptureLost):
                self._writer.lost_records(message.records)

    def stop(self) -> tuple[int, int]:
        """Stop and close the file; the frames written and the records lost."""
        self._stopping.set()
        self._thread.join(2.0)
        self._feed.close()
        self._writer.close()
        return self._writer.written, self._writer.lost


class Captures:
    """The captures running, as the workers must know them (also after a restart), and the
    one capture to a file."""

    def __init__(
        self, pool: WorkerPool, control: ControlServer, labels: Callable[[], set[str]]
    ) -> None:
        """`labels`: the links of the spec in force (a capture of another is refused)."""
        self._pool = pool
        self._control = control
        self._labels = labels
        #: What each worker is told to capture now (None: nothing), for restarts.
        self._capturing: dict[Direction, StartCapture | None] = dict.fromkeys(DIRECTIONS)
        self._capture_lock = threading.Lock()
        self._file_capture: FileCapture | None = None
        self._file_lock = threading.Lock()  # not _capture_lock: opening a capture takes that

    def wanted(self, direction: Direction) -> StartCapture | None:
        """What a worker of `direction` must capture now (one just started is told)."""
        with self._capture_lock:
            return self._capturing[direction]

    def refuse(self, request: CaptureRequest) -> Error | None:
        if request.label is not None and request.label not in self._labels():
            return Error(message=f"link: no link labelled {request.label!r}")
        return None

    def open(self, request: CaptureRequest) -> CaptureFeed:
        """A capture read in this process (the HTTP API's); ControlError for a bad request."""
        refused = self.refuse(request)
        if refused is not None:
            raise ControlError(refused.message)
        return self._control.open_capture(request)

    def to_file(self, request: CaptureToFile) -> Message:
        refused = self.refuse(request.capture)
        if refused is not None:
            return refused
        with self._file_lock:
            if self._file_capture is not None:
                return Error(message=f"path: a capture to {self._file_capture.path} runs already")
            try:
                capture = FileCapture(request.path, self.open(request.capture))
            except OSError as exc:
                return Error(message=f"path: {request.path}: {exc.strerror}")
            self._file_capture = capture
        log.info("capturing to %s", request.path)
        return Done(message=f"capturing to {request.path}")

    def stop_to_file(self) -> Message:
        with self._file_lock:
            capture, self._file_capture = self._file_capture, None
        if capture is None:
            return Error(message="no capture to a file runs")
        written, lost = capture.stop()
        said = f"{written} frames written to {capture.path}"
        if lost:
            said += f", {lost} records lost"
        log.info("capture: %s", said)
        return Done(message=said)

    def close(self) -> None:
        """At shutdown: the file capture stopped, its file closed whole."""
        if self._file_capture is not None:
            self.stop_to_file()

    def changed(self, captures: list[CaptureRequest]) -> None:
        """Tell each worker what the captures running want of it: frames cut at the longest
        snaplen asked, only drops if that is all anyone wants; nothing once none is left."""
        with self._capture_lock:
            for worker in self._pool.workers.values():
                direction = worker.direction
                wanted = [c for c in captures if c.direction in (None, direction)]
                start = (
                    StartCapture(
                        snaplen=max(c.snaplen for c in wanted),
                        drops_only=all(c.drops_only for c in wanted),
                    )
                    if wanted
                    else None
                )
                if start == self._capturing[direction]:
                    continue
                self._capturing[direction] = start
                worker.send(encode(start if start is not None else StopCapture()))
                log.info("%s: %s", direction, "capturing fates" if start else "capture ended")
