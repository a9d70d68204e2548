"""Serving the API: uvicorn in a thread, an engine reached over its control socket (for
`linkshaper http`), the token, and the address to listen on."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from engine.model.errors import LinkshaperError
from engine.protocol.control import ControlError, Listeners
from engine.protocol.messages import CaptureRequest, Error, Message, Subscribe


class ListenError(LinkshaperError, ValueError):
    """An address to serve the API on that cannot be used."""


class RemoteEngine:
    """The API's engine over a control socket (`linkshaper http`): requests on one connection,
    published messages from a subscription read by a thread."""

    def __init__(self, control: str) -> None:
        from engine.protocol.client import ControlClient

        self.control = control
        self._client = ControlClient(control)
        self._lock = threading.Lock()
        self._listeners = Listeners()
        self._subscription = ControlClient(control)
        threading.Thread(target=self._read, daemon=True, name="http-subscription").start()

    def handle(self, request: Message) -> Message:
        with self._lock:
            return self._client.request(request)

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


class HttpServer:
    """uvicorn in a thread of the engine's process."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="http")

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if self.server.started or not self.thread.is_alive():
                break
            deadline.wait(0.05)
        if not self.server.started:
            raise OSError(
                f"the HTTP API did not start on {self.server.config.host}:{self.server.config.port}"
            )

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


TOKEN_VARIABLE = "LINKSHAPER_HTTP_TOKEN"


def resolve_token(given: str | None) -> str | None:
    """The token changes need: the one given on the command line, else $LINKSHAPER_HTTP_TOKEN,
    else none (an empty one is none too)."""
    return given or os.environ.get(TOKEN_VARIABLE) or None


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (all addresses, said on purpose) or `PORT` (loopback only: the
    API can change the link, so it is not opened to the network by default); IPv6 as
    `[::1]:8080`."""
    host, colon, port = text.rpartition(":")
    host = host.strip("[]") or ("0.0.0.0" if colon else "127.0.0.1")
    try:
        number = int(port)
    except ValueError:
        raise ListenError(f"--http: {text!r} is not HOST:PORT") from None
    if not 0 < number < 65536:
        raise ListenError(f"--http: port {number} is out of range")
    return host, number
