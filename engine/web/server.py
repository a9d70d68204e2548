"""Serving the API: uvicorn in a thread, an engine reached over its control socket (for
`linkshaper http`), the token, and the address to listen on."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import threading
import time
from typing import Any, ClassVar

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from engine.model.errors import LinkshaperError


class ListenError(LinkshaperError, ValueError):
    """An address to serve the API on that cannot be used."""


log = logging.getLogger("linkshaper")


#: A connection must send a whole request head within this long of opening (or of its last
#: answer, kept alive): a client sends it at once; a slowloris trickles it to hold a socket.
HEAD_TIMEOUT = 5.0
#: And then the request's body within this long at most: 16 MiB at 2.5 Mbit/s (a shaped link's
#: API is best reached through --unshaped-port).
BODY_TIMEOUT = 60.0
#: A body with a declared length must come at this rate on average (after HEAD_TIMEOUT of
#: grace): the rate BODY_TIMEOUT allows the largest body, so a patch of a few hundred bytes
#: trickled a byte at a time holds its connection for 5 s, not 60.
MIN_BODY_RATE = 16 * 1024 * 1024 / (BODY_TIMEOUT - HEAD_TIMEOUT)
#: An idle kept-alive connection is closed after this long (uvicorn's own timer, its default).
KEEP_ALIVE_TIMEOUT = 5
#: A connection whose reader takes nothing of an answer for this long is dropped (a stalled
#: stream or capture, or a reader that never reads: each holds its socket and its buffer).
WRITE_STALL_TIMEOUT = 30.0
#: Most connections one process serves however many descriptors it may open: each costs a
#: socket and up to 16 KiB of unparsed head; no one person needs more to shape a link.
MAX_CONNECTIONS = 1000
#: Fewest connections served, even under a descriptor limit so low that the reserve leaves
#: less room (the engine still starts: a warning says so).
MIN_CONNECTIONS = 8
#: Descriptors never given to HTTP: restarting a worker (its Pipe, its process sentinel and the
#: pipes `spawn` opens), the control socket's clients, files the supervisor writes.
DESCRIPTOR_RESERVE = 64
#: Connections taken from the kernel's queue per turn of the event loop, and the queue's
#: length: each taken connection is a descriptor held until the guard sheds it a turn or two
#: later, so the cap leaves room for ACCEPT_OVERSHOOT such turns.
ACCEPT_BURST = 32
ACCEPT_OVERSHOOT = 2
#: The descriptor limit the engine raises its soft limit to (at most its hard limit): far more
#: than MAX_CONNECTIONS plus the reserve; not the hard limit itself, which may be a million.
WANTED_DESCRIPTORS = 65536
#: A repeated warning (connections shed, a loop error) is logged at most once this often, with
#: how many times it happened meanwhile.
WARNING_INTERVAL = 60.0


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE towards the hard limit (WANTED_DESCRIPTORS at most), so that
    the connection cap leaves a reserve; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_DESCRIPTORS if hard == resource.RLIM_INFINITY else min(hard, WANTED_DESCRIPTORS)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, wanted, exc)
            return soft
        return wanted
    return soft


def open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 3 * DESCRIPTOR_RESERVE  # no /proc: a generous guess


def connection_cap(servers: int = 1) -> int:
    """Connections each of `servers` HTTP servers may hold, from what the descriptor limit leaves
    after what is open now, DESCRIPTOR_RESERVE and each server's accept overshoot."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = soft - open_descriptors() - DESCRIPTOR_RESERVE
    cap = min(MAX_CONNECTIONS, room // max(servers, 1) - ACCEPT_BURST * ACCEPT_OVERSHOOT)
    if cap < MIN_CONNECTIONS:
        log.warning(
            "only %d descriptors may be opened: HTTP serves %d connections at a time and the "
            "reserve to restart a worker may run short (raise `ulimit -n`)",
            soft,
            MIN_CONNECTIONS,
        )
        return MIN_CONNECTIONS
    return cap


class Throttled:
    """A warning that may repeat without end (an attacker can make it): logged the first time,
    then at most once per WARNING_INTERVAL with the count since."""

    def __init__(self, interval: float = WARNING_INTERVAL) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._since: dict[str, int] = {}
        self._lock = threading.Lock()

    def warn(self, text: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(text)
            if last is not None and now - last < self.interval:
                self._since[text] = self._since.get(text, 0) + 1
                return
            self._last[text] = now
            repeated = self._since.pop(text, 0)
        if repeated:
            log.warning(text + " (and %d more times in %.0f s)", *args, repeated, self.interval)
        else:
            log.warning(text, *args)


class ConnectionGuard:
    """The connections of one server, up to `cap`: at the cap, a new one takes the place of the
    oldest that is waiting on its client, for a request head or the rest of a body (a
    slowloris's, however it trickles); if every one is busy with an answer, the new one is
    closed at once."""

    def __init__(self, cap: int, warnings: Throttled | None = None) -> None:
        self.cap = cap
        self.open: dict[GuardedH11Protocol, None] = {}  # insertion order: the oldest first
        self.shed = 0
        self.refused = 0
        self.timed_out = 0
        self._warnings = warnings or Throttled()

    def admit(self, connection: GuardedH11Protocol) -> bool:
        if len(self.open) >= self.cap:
            idle = next((c for c in self.open if c.waiting_on_client), None)
            if idle is None:
                self.refused += 1
                self._warnings.warn("HTTP: %d connections busy (the cap): one refused", self.cap)
                return False
            self.shed += 1
            self._warnings.warn(
                "HTTP: %d connections (the cap): the oldest waiting on its client closed",
                self.cap,
            )
            idle.drop()
        self.open[connection] = None
        return True

    def forget(self, connection: GuardedH11Protocol) -> None:
        self.open.pop(connection, None)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 connection with the deadlines it lacks (a request head within
    HEAD_TIMEOUT, its body within BODY_TIMEOUT, a reader stalled for no longer than
    WRITE_STALL_TIMEOUT) and counted by its server's ConnectionGuard. uvicorn's own keep-alive
    timer runs only after an answer and stops at the first byte of the next request, and
    its `limit_concurrency` answers 503 only once a whole head has come."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting_for_request = True
        self._deadline: asyncio.TimerHandle | None = None
        self._stalled: asyncio.TimerHandle | None = None
        self._seen: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.admit(self):
            transport.abort()
            return
        self._expect_request()

    @property
    def waiting_on_client(self) -> bool:
        """Whether the server waits for input (a head, or the rest of a body), not on itself
        to answer: such a connection costs its client nothing to hold."""
        return self.waiting_for_request or (self.cycle is not None and self.cycle.more_body)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self.guard.forget(self)
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if cycle is None or cycle is self._seen:
            if cycle is not None and not cycle.more_body and not self.waiting_for_request:
                self._disarm()  # the whole body came
            return
        self._seen = cycle
        self.waiting_for_request = False
        if cycle.more_body:
            self._arm(body_deadline(cycle.scope["headers"]))
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        self._expect_request()
        super().on_response_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stalled is None:
            self._stalled = self.loop.call_later(WRITE_STALL_TIMEOUT, self._overdue)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None

    def drop(self) -> None:
        """Close at once, unsent data and all (a shed or overdue connection)."""
        self._cancel_timers()
        self.guard.forget(self)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def _expect_request(self) -> None:
        self.waiting_for_request = True
        self._arm(HEAD_TIMEOUT)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._overdue)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cancel_timers(self) -> None:
        self._disarm()
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None

    def _overdue(self) -> None:
        self.guard.timed_out += 1
        self.drop()


def body_deadline(headers: Any) -> float:
    """Seconds a body may take: by its declared length at MIN_BODY_RATE, BODY_TIMEOUT at most
    (and for a body sent in chunks, whose length is not known)."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit():
            return min(BODY_TIMEOUT, HEAD_TIMEOUT + int(value) / MIN_BODY_RATE)
    return BODY_TIMEOUT


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """The protocol class for one server: its connections counted by `guard`."""
    return type("ServerH11Protocol", (GuardedH11Protocol,), {"guard": guard})


class HttpServer:
    """uvicorn in a thread of the engine's process, with a connection cap (`connections`, by
    default what the descriptor limit leaves: see `connection_cap`) and request deadlines."""

    def __init__(self, app: FastAPI, host: str, port: int, connections: int | None = None) -> None:
        self.warnings = Throttled()
        self.guard = ConnectionGuard(
            connection_cap() if connections is None else connections, self.warnings
        )
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False,
            http=guarded_protocol(self.guard), timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
            backlog=ACCEPT_BURST,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True, name="http")

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        asyncio.get_running_loop().set_exception_handler(self._loop_error)
        await self.server.serve()

    def _loop_error(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's own reports (`socket.accept() out of system resource` above all, once per
        connection waiting): throttled, whatever the cause."""
        exception = context.get("exception")
        reason = f": {exception}" if exception is not None else ""
        self.warnings.warn("HTTP: %s%s", context.get("message", "event loop error"), reason)

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
    """The token HTTP requests need: the one given on the command line, else
    $LINKSHAPER_HTTP_TOKEN, else none (an empty one is none too)."""
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
