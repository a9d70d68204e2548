"""The latest frames' fates, from a capture of the engine's (`Subscribe(capture=...)` on a
control connection of its own), for the packets view. `read` runs in a thread worker of the
view's (Textual's `run_worker`, ended with the view); the view takes what it shows twice a
second. While a feed runs the engine notes every frame's fate, so the view
runs one only while it is open."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass

from engine.model.fates import FateRecord, wanted_records
from engine.protocol.client import ControlClient
from engine.protocol.control import ControlError
from engine.protocol.messages import (
    CaptureLost,
    CaptureRequest,
    Done,
    Error,
    FateRecords,
    Subscribe,
)

#: Frames kept for the view: the latest, whatever their fate.
KEPT = 2000
SNAPLEN = 96  # enough for the addresses, ports and TCP flags of a summary


@dataclass(frozen=True, slots=True)
class SeenFrame:
    direction: str
    record: FateRecord
    #: The feed's own number for it, never given twice while the feed runs: what the view
    #: keys a frame's summary on (an object's id is reused once the deque lets it go).
    number: int


class PacketFeed:
    def __init__(self, control: str) -> None:
        """Raises ControlError if the engine cannot be reached or refuses the capture."""
        self.frames: deque[SeenFrame] = deque(maxlen=KEPT)
        self.lost = 0
        self.error = ""
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._client = ControlClient(control)
        reply = self._client.request(Subscribe(capture=CaptureRequest(snaplen=SNAPLEN)))
        if not isinstance(reply, Done):
            self._client.close()
            raise ControlError(reply.message if isinstance(reply, Error) else reply.type)

    def read(self) -> None:
        """Until `stop` (each wait is at most half a second, so a worker ends promptly)."""
        while not self._stopping.is_set():
            try:
                message = self._client.receive(0.5)
            except ControlError as exc:
                if not self._stopping.is_set():
                    self.error = str(exc)
                return
            if isinstance(message, CaptureLost):
                self.lost += message.records
            elif isinstance(message, FateRecords):
                self.lost += message.lost
                records = wanted_records(message.data, message.labels, None, False)
                with self._lock:
                    self.frames.extend(
                        SeenFrame(message.direction, r, next(self._numbers)) for r in records
                    )

    def latest(self) -> list[SeenFrame]:
        with self._lock:
            return list(self.frames)

    def stop(self) -> None:
        self._stopping.set()
        self._client.close()
