"""`linkshaper http`'s engine: the one at a control socket, spoken to over a connection of
its own for requests, a subscription for what it publishes, and one per capture."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from engine.protocol.control import REPLY_TIMEOUT, ControlError, no_answer
from engine.protocol.messages import CaptureRequest, Error, Message, Subscribe
from engine.protocol.subscribers import Listeners

#: How long `linkshaper http` waits for the engine's answer to one request, counted from when
#: the request arrives (time queued behind another included): the command line's and the
#: TUI's deadline, then a 503 (a stopped supervisor must not hold the caller and a connection).
API_REPLY_TIMEOUT = REPLY_TIMEOUT


class RemoteEngine:
    """The API's engine over a control socket (`linkshaper http`): requests on one connection,
    published messages from a subscription read by a thread."""

    def __init__(self, control: str) -> None:
        from engine.protocol.client import ControlClient

        self.control = control
        self._client: ControlClient | None = ControlClient(control, timeout=API_REPLY_TIMEOUT)
        self._lock = threading.Lock()
        self._listeners = Listeners()
        self._subscription = ControlClient(control)
        threading.Thread(target=self._read, daemon=True, name="http-subscription").start()

    def handle(self, request: Message) -> Message:
        """The engine's reply. A connection that failed (the engine gone, or silent past the
        deadline: the client shut it down) is replaced for the next request, not kept dead."""
        from engine.protocol.client import ControlClient

        due = time.monotonic() + API_REPLY_TIMEOUT
        if not self._lock.acquire(timeout=API_REPLY_TIMEOUT):  # queued behind a silent one
            raise no_answer(self.control, API_REPLY_TIMEOUT)
        try:
            left = max(0.1, due - time.monotonic())
            if self._client is None:
                self._client = ControlClient(self.control, timeout=left)
            self._client.timeout = left
            try:
                return self._client.request(request)
            except ControlError:
                self._client.close()
                self._client = None
                raise
        finally:
            self._lock.release()

    def listen(self, callback: Callable[[Message], None]) -> Callable[[], None]:
        return self._listeners.add(callback)

    def capture(self, request: CaptureRequest) -> RemoteCapture:
        return RemoteCapture(self.control, request)

    def _read(self) -> None:
        for message in self._subscription.subscribe():
            self._listeners.notify(message)


class RemoteCapture:
    """A capture over a control connection of its own."""

    def __init__(self, control: str, request: CaptureRequest) -> None:
        from engine.protocol.client import ControlClient

        self._client = ControlClient(control)
        reply = self._client.request(Subscribe(capture=request))
        if isinstance(reply, Error):
            self._client.close()
            raise ControlError(reply.message)

    def get(self, timeout: float) -> Message | None:
        try:
            return self._client.receive(timeout)
        except ControlError:
            return None

    def close(self) -> None:
        self._client.close()
