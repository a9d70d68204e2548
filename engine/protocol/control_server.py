"""The control socket's server: a `multiprocessing.connection` listener that many clients share.

Each client gets a thread. Subscribers get their own bounded outbox and sender thread
(`subscribers`), so a slow or vanished client only loses its own samples; it never blocks the
supervisor, which must keep reading the workers' stats pipes. The authkey lives in a mode-0600
file beside the socket (`control.sock` -> `control.key`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import socket
import struct
import threading
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from pathlib import Path

from pydantic import ValidationError

from engine.files.regular_files import write_atomically
from engine.protocol.control import (
    MAX_REQUEST,
    ControlError,
    key_path,
    socket_in_use,
)
from engine.protocol.messages import (
    CaptureRequest,
    Error,
    FateRecords,
    Message,
    PatchSpec,
    SetSpec,
    SpecChanged,
    Subscribe,
    decode_request,
    encode,
)
from engine.protocol.request_errors import request_problem
from engine.protocol.subscribers import CaptureFeed, Listeners, Outbox, Subscriber

#: A client has this long to prove it holds the key; meanwhile it holds up nobody else.
HANDSHAKE_TIMEOUT = 5.0
BACKLOG = 64
#: Most control connections at once (clients being served and subscribers: each is a thread
#: or two); one more is told so in one line and closed. The TUI takes two, `linkshaper http`
#: two, a capture one more: 1,000 idle subscribers once held 1,006 threads.
MAX_CONNECTIONS = 64
#: Connections past the cap being told so at once (each for at most a second); more are
#: closed unanswered.
MAX_REFUSING = 8
TOO_MANY = f"too many control connections (at most {MAX_CONNECTIONS} at once): try again later"
#: Most of those one process may hold, so that one client (a script gone wrong, holding
#: connections it never closes) cannot shut every other out: the rest stay for others.
MAX_PER_PROCESS = 16
TOO_MANY_HERE = (
    f"too many control connections from this process (at most {MAX_PER_PROCESS}): close some"
)

log = logging.getLogger("linkshaper")

Handler = Callable[[Message], Message]


class ControlServer:
    """Serves control requests on a socket at `path`, and on any connection handed to `serve`
    (a Pipe, for an engine that a TUI starts itself). With no path, only the latter."""

    def __init__(
        self,
        path: str | None,
        handler: Handler,
        on_captures: Callable[[list[CaptureRequest]], None] | None = None,
        on_watchers: Callable[[], None] | None = None,
    ) -> None:
        """`on_captures`: called with the captures running whenever one starts or ends;
        `on_watchers`: whenever a subscriber or listener comes or goes (see `watchers`)."""
        self.path = path
        self._handler = handler
        self._on_captures = on_captures
        self._on_watchers = on_watchers
        self._subscribers: set[Outbox] = set()
        self._listeners = Listeners()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._authkey = b""
        self._closing = False
        #: Socket connections open (being served, or a subscriber's), and being refused.
        self._clients = 0
        self._refusing = 0
        #: Of `_clients`, how many each peer process holds (by its pid, from SO_PEERCRED).
        self._per_process: dict[int, int] = {}

    def start(self) -> None:
        if self.path is None:
            return
        directory = Path(self.path).parent
        directory.mkdir(parents=True, exist_ok=True)
        if os.path.exists(self.path):
            if socket_in_use(self.path):
                raise ControlError(f"another engine is listening on {self.path}")
            os.unlink(self.path)
        authkey = secrets.token_bytes(32)
        # Never opened in place: a link planted at the name (the directory may be shared) is
        # replaced, not written through, and the key is 0600 from its first byte.
        write_atomically(str(key_path(self.path)), (authkey.hex() + "\n").encode(),
                         durable=False, mode=0o600)  # fmt: skip
        self._authkey = authkey
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old_umask)
        listener.listen(BACKLOG)
        self._listener = listener
        threading.Thread(target=self._accept_loop, daemon=True, name="control-accept").start()

    def serve(self, conn: Connection, on_close: Callable[[], None] | None = None) -> None:
        """Answer requests on `conn` in a thread of its own, as for a socket client."""

        def run() -> None:
            self._serve(conn)
            if on_close is not None and not self._closing:
                on_close()

        threading.Thread(target=run, daemon=True, name="control-conn").start()

    def listen(self, callback: Callable[[Message], None]) -> Callable[[], None]:
        """In-process subscribers (the HTTP API): `callback` gets every published message and
        must not block. Returns the function that stops it."""
        remove = self._listeners.add(callback)
        self._watchers_changed()

        def stop() -> None:
            remove()
            self._watchers_changed()

        return stop

    @property
    def captures(self) -> list[CaptureRequest]:
        with self._lock:
            return [s.capture for s in self._subscribers if s.capture is not None]

    def open_capture(self, request: CaptureRequest) -> CaptureFeed:
        """A capture read in this process; `close()` it when done."""
        feed = CaptureFeed(request, self._forget)
        with self._lock:
            self._subscribers.add(feed)
        self._captures_changed()
        self._watchers_changed()
        return feed

    def _captures_changed(self) -> None:
        if self._on_captures is not None:
            self._on_captures(self.captures)

    def _watchers_changed(self) -> None:
        if self._on_watchers is not None:
            self._on_watchers()

    @property
    def watchers(self) -> int:
        """Subscribers and in-process listeners: whoever wants live figures."""
        return len(self._subscribers) + len(self._listeners)

    def publish(self, message: Message) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        if isinstance(message, FateRecords):
            takers = [
                s for s in subscribers
                if s.capture is not None and s.capture.direction in (None, message.direction)
            ]  # fmt: skip
            if takers:
                data = encode(message)
                for subscriber in takers:
                    subscriber.offer_records(data, message.count)
            return
        subscribers = [s for s in subscribers if s.capture is None]
        if subscribers:  # encoded only for someone: a report of 10,000 flows is large
            data = encode(message)
            latest_wins = isinstance(message, SpecChanged)
            for subscriber in subscribers:
                subscriber.offer(data, latest_wins)
        self._listeners.notify(message)

    def close(self) -> None:
        self._closing = True
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept loop
            with contextlib.suppress(OSError):
                listener.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            with contextlib.suppress(FileNotFoundError):
                key_path(self.path).unlink()
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.close()

    def _accept_loop(self) -> None:
        """Accept only: each client's handshake runs in its own thread, so a client that
        connects and says nothing holds up no one but itself."""
        while not self._closing and (listener := self._listener) is not None:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener closing, or out of file descriptors for a moment
                if not self._closing:
                    threading.Event().wait(0.05)
                continue
            peer = _peer_pid(client)
            with self._lock:
                held = self._per_process.get(peer, 0)
                full = self._clients >= MAX_CONNECTIONS
                admitted = not full and held < MAX_PER_PROCESS
                refused = not admitted and self._refusing < MAX_REFUSING
                if admitted:
                    self._clients += 1
                    self._per_process[peer] = held + 1
                self._refusing += refused
            if admitted:
                threading.Thread(target=self._authenticate, args=(client, peer), daemon=True,
                                 name="control-conn").start()  # fmt: skip
            elif refused:
                why = TOO_MANY if full else TOO_MANY_HERE
                threading.Thread(target=self._refuse, args=(client, why), daemon=True,
                                 name="control-conn").start()  # fmt: skip
            else:
                client.close()

    def _client_gone(self, peer: int) -> None:
        with self._lock:
            self._clients -= 1
            left = self._per_process.pop(peer, 1) - 1
            if left > 0:
                self._per_process[peer] = left

    def _refuse(self, client: socket.socket, why: str) -> None:
        """Tell a client past MAX_CONNECTIONS (or its process's share) so, in one line, as
        the answer to its request."""
        try:
            conn = self._handshake(client, 1)
            if conn is not None:
                with contextlib.suppress(OSError, EOFError):
                    if conn.poll(1):
                        conn.recv_bytes(MAX_REQUEST)
                        conn.send_bytes(encode(Error(message=why)))
                with contextlib.suppress(OSError):
                    conn.close()
        finally:
            with self._lock:
                self._refusing -= 1

    def _handshake(self, client: socket.socket, seconds: int) -> Connection | None:
        """The `multiprocessing.connection` handshake (both ways) within `seconds`; None if
        it fails (a wrong key, garbage, silence or a client gone: dropped)."""
        timeout = struct.pack("ll", seconds, 0)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
        conn = Connection(client.detach())
        try:
            deliver_challenge(conn, self._authkey)
            answer_challenge(conn, self._authkey)
        except Exception:
            with contextlib.suppress(OSError):
                conn.close()
            return None
        return conn

    def _authenticate(self, client: socket.socket, peer: int) -> None:
        """The handshake within HANDSHAKE_TIMEOUT; then the connection is served without a
        timeout. It counts against MAX_CONNECTIONS until it ends, or its subscription does."""
        handed_on = False
        try:
            conn = self._handshake(client, int(HANDSHAKE_TIMEOUT))
            if conn is None:
                return
            with socket.socket(fileno=os.dup(conn.fileno())) as view:
                view.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
                view.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 0))
            handed_on = self._serve(conn, peer)
        finally:
            if not handed_on:
                self._client_gone(peer)

    def _forget(self, subscriber: Outbox) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)
        if subscriber.capture is not None:
            self._captures_changed()
        self._watchers_changed()

    def _forget_client(self, subscriber: Outbox, peer: int) -> None:
        self._forget(subscriber)
        self._client_gone(peer)

    def _serve(self, conn: Connection, peer: int | None = None) -> bool:
        """Until the client goes (False), or until it subscribes (True: its sender thread
        owns it, and one from a `peer` process counts against MAX_CONNECTIONS until it goes)."""
        try:
            while True:
                try:
                    data = conn.recv_bytes(MAX_REQUEST)
                except (EOFError, OSError):
                    return False
                request: Message | None = None
                try:
                    request = decode_request(data)
                except ValidationError as exc:
                    reply: Message = Error(message=f"bad request: {request_problem(exc)}")
                except Exception:  # not even JSON text (bad UTF-8, nested too deep)
                    reply = Error(message="bad request: not a message")
                else:
                    if _hung_up(conn):  # gave up waiting (a stopped engine): do not apply it
                        log.warning("control request %s dropped: its client is gone", request.type)
                        return False
                    if isinstance(request, SetSpec | PatchSpec):  # and while it waits
                        request.abandoned_when(_caller_left(conn))
                    try:
                        reply = self._handler(request)
                    except Exception as exc:  # a handler bug must not kill the engine
                        log.exception("control request failed")
                        reply = Error(message=f"internal error: {exc}")
                conn.send_bytes(encode(reply))
                if isinstance(request, Subscribe) and not isinstance(reply, Error):
                    forget = (
                        self._forget if peer is None else partial(self._forget_client, peer=peer)
                    )
                    subscriber = Subscriber(conn, forget, request.capture)
                    with self._lock:
                        self._subscribers.add(subscriber)
                    if request.capture is not None:
                        self._captures_changed()
                    self._watchers_changed()
                    return True  # the connection now belongs to the subscriber's sender
        except OSError:
            with contextlib.suppress(OSError):
                conn.close()
        return False


def _peer_pid(client: socket.socket) -> int:
    """The pid of the process at the other end of a Unix socket (0 if the kernel cannot say)."""
    try:
        creds = client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return 0
    pid: int = struct.unpack("3i", creds)[0]
    return pid


def _hung_up(conn: Connection) -> bool:
    """Whether the client has shut its end: one that timed out waiting (the engine stopped)
    must not have its change put in force later, when it believes the change failed."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLRDHUP)
    return bool(poller.poll(0))


def _caller_left(conn: Connection) -> Callable[[], bool]:
    """Whether the client of a change has hung up: the command line, `linkshaper http` and
    the TUI shut the connection at their reply deadline, having said the change failed. Asked
    again just before the change is committed, however long it waited for the gate or the
    lock meanwhile. (No deadline of the engine's own: a client may wait longer, as a bench
    applying 10,000 flows on a loaded machine does.)"""
    return lambda: _hung_up(conn)
