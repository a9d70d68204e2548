"""The TUI's side of the engine protocol, in threads of its own.

One thread keeps a connection (reattaching when the source allows it) and turns the
subscription into app messages. Another sends changes: key presses that come faster than the
engine answers are merged into one patch, so a held arrow key never queues up stale values.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from textual.message import Message

from engine.model.spec import Spec
from engine.protocol.client import ControlClient
from engine.protocol.control import ControlError
from engine.protocol.messages import Done, Error, SpecChanged, StatsReport
from engine.protocol.messages import Message as ProtocolMessage
from engine.protocol.messages import WorkerRestarted as EngineWorkerRestarted
from shaper_tui.engine_source import EngineSource
from shaper_tui.messages import (
    EngineAttached,
    EngineDone,
    EngineLost,
    EngineRejected,
    LinkSettled,
    SpecArrived,
    StatsArrived,
    WorkerRestarted,
)

RETRY_SECONDS = 1.0
#: Stats reports posted to the app and not yet handled, at most: a minute of the engine's
#: reports (20 a second, ~5 MB). An app that falls that far behind (a loaded machine: 3,300
#: were seen waiting, each a whole report) skips reports rather than queue each; fewer would
#: skip reports a test's scripted engine sends at once.
MAX_STATS_WAITING = 1200
#: Changes kept for a recording between two the app takes (a flood of changes, ~22 kB each).
MAX_BURST = 1000

Operation = tuple[str, Any]  # ("patch" or "lone_patch", dict), ("spec", Spec), ("flush", None)
#: The operations that change the spec (a refused one leaves the controls to be set back).
SPEC_CHANGES = ("patch", "lone_patch", "spec")


class EngineLink:
    def __init__(self, source: EngineSource, post: Callable[[Message], object], tag: str) -> None:
        self.source = source
        self.tag = tag
        self._post = post
        self._client: ControlClient | None = None
        #: The attachment's event connection: shut to have the attachment made again.
        self._events: Any = None
        self._client_lock = threading.Lock()
        self._pending: list[Operation] = []
        self._in_flight = 0
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        #: Every spec change arrived since the app last took one (`take_spec`), oldest first,
        #: MAX_BURST at most: a burst is one message to the app, so a flood costs one repaint
        #: (of the newest, the last), and a recording keeps each.
        self._spec_lock = threading.Lock()
        self._burst: deque[SpecArrived] = deque(maxlen=MAX_BURST)
        #: Reports posted and not yet taken (`stats_taken`), and those skipped for it.
        self._stats_waiting = 0
        self.stats_skipped = 0
        #: When the engine last said anything (monotonic): reports come ten times a second.
        self.last_heard = time.monotonic()
        #: When the oldest change still unanswered was asked for (monotonic), or None.
        self._busy_since: float | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        for target, name in (
            (self._attach_loop, "engine-attach"),
            (self._send_loop, "engine-send"),
        ):
            thread = threading.Thread(target=target, daemon=True, name=name)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        # The subscription ends by itself when the engine does; closing it here, under the
        # thread that reads it, would only turn that end into an exception.
        self.source.close()

    @property
    def attached(self) -> bool:
        return self._client is not None

    def unanswered_for(self) -> float:
        """Seconds the oldest change of ours has waited for its answer (0 if none waits)."""
        with self._wake:
            since = self._busy_since
        return 0.0 if since is None else time.monotonic() - since

    def _asked(self) -> None:
        """A change queued (called under `_wake`): the wait starts if none was waiting."""
        if self._busy_since is None:
            self._busy_since = time.monotonic()
        self._wake.notify()

    @property
    def busy(self) -> bool:
        """Changes of ours are queued or on their way: the spec echoed back may be stale."""
        with self._wake:
            return bool(self._pending) or self._in_flight > 0

    # --- changes ---------------------------------------------------------------------

    def patch(self, changes: dict[str, Any], alone: bool = False) -> None:
        """Send `changes`, merged with the patch queued last unless `alone` (a patch the engine
        may refuse must not take others down with it)."""
        with self._wake:
            if not alone and self._pending and self._pending[-1][0] == "patch":
                self._pending[-1][1].update(changes)
            else:
                self._pending.append(("lone_patch" if alone else "patch", dict(changes)))
            self._asked()

    def set_spec(self, spec: Spec) -> None:
        with self._wake:
            self._pending.append(("spec", spec))
            self._asked()

    def flush(self) -> None:
        """Have the engine drop what every link holds, queued and delayed."""
        with self._wake:
            self._pending.append(("flush", None))
            self._asked()

    def request(self, message: ProtocolMessage) -> None:
        """Any other request (a capture to a file): its answer comes as EngineDone or
        EngineRejected."""
        with self._wake:
            self._pending.append(("request", message))
            self._asked()

    def apply_now(self, spec: Spec, source: str) -> None:
        """Put a whole spec in force before returning (a replay's steps must be on time);
        raises ControlError if there is no engine or it refuses."""
        with self._client_lock:
            client = self._client
            if client is None:
                raise ControlError("not attached to an engine")
            try:
                client.set_spec(spec, source=source)
            except ControlError:
                if client.broken:
                    self._drop(client)
                raise

    def _send_loop(self) -> None:
        while not self._stopping.is_set():
            with self._wake:
                while not self._pending and not self._stopping.is_set():
                    self._wake.wait()
                operations, self._pending = self._pending, []
                self._in_flight = len(operations)
            replied: Spec | None = None
            refused = settled = False
            for kind, payload in operations:
                answer = self._send(kind, payload)
                if kind in SPEC_CHANGES:  # the last spec change's answer is what is in force
                    replied = answer
                    refused = refused or answer is None
                with self._wake:
                    self._in_flight -= 1
                    settled = not self._pending and self._in_flight == 0
                    if settled:
                        self._busy_since = None
            if settled:
                self._post(LinkSettled(replied, refused))

    def _send(self, kind: str, payload: Any) -> Spec | None:
        """Send one operation; the spec the engine replied with to a spec change, else None
        (refused, failed or not a spec change)."""
        with self._client_lock:
            client = self._client
            if client is None:
                self._post(EngineRejected("not attached to an engine: the change was not sent"))
                return None
            try:
                if kind in ("patch", "lone_patch"):
                    return client.patch(payload, source=self.tag)
                if kind == "spec":
                    return client.set_spec(payload, source=self.tag)
                if kind == "flush":
                    said = client.flush()  # (gone for good: not on the undo history)
                    self._post(EngineDone(f"{said}: a flush cannot be undone"))
                else:
                    reply = client.request(payload)
                    if isinstance(reply, Done):
                        self._post(EngineDone(reply.message))
                    else:
                        message = reply.message if isinstance(reply, Error) else reply.type
                        self._post(EngineRejected(message))
            except ControlError as exc:
                self._post(EngineRejected(str(exc)))
                if client.broken:
                    self._drop(client)
            return None

    def _drop(self, client: ControlClient) -> None:
        """A request client that timed out or lost its connection is never used again (the
        engine's late reply would answer the next request): the attachment is made anew, with
        the spec then in force (called under `_client_lock`)."""
        if self._client is client:
            self._client = None
        events = self._events
        if events is not None:
            with (
                contextlib.suppress(OSError, ValueError),
                socket.socket(fileno=os.dup(events.fileno())) as sock,
            ):
                sock.shutdown(socket.SHUT_RDWR)  # the subscription ends: reattach

    # --- spec changes ----------------------------------------------------------------

    def _post_stats(self, report: StatsReport) -> None:
        with self._spec_lock:
            if self._stats_waiting >= MAX_STATS_WAITING:
                self.stats_skipped += 1
                return
            self._stats_waiting += 1
        if self._post(StatsArrived(report.stats)) is False:  # (the app is closing)
            self.stats_taken()

    def stats_taken(self) -> None:
        """The app handled a report (one more may be posted)."""
        with self._spec_lock:
            self._stats_waiting = max(0, self._stats_waiting - 1)

    def _offer(self, arrived: SpecArrived) -> None:
        """Keep `arrived` as the newest change; tell the app only if it has none waiting."""
        with self._spec_lock:
            waiting = self._burst[-1] if self._burst else None
            if waiting is not None:
                arrived.others, arrived.other = waiting.others, waiting.other
            if arrived.source != self.tag:
                arrived.others += 1
                arrived.other = (arrived.source, arrived.origin)
            self._burst.append(arrived)
        if waiting is None:
            self._post(arrived)

    def take_spec(self, posted: SpecArrived) -> tuple[SpecArrived, list[SpecArrived]]:
        """The newest change arrived since the app last took one (`posted` if none): what
        the app shows, standing for every change of the burst (its `others`); and every
        change of the burst, oldest first (a recording keeps each), taken at once."""
        with self._spec_lock:
            burst = list(self._burst)
            self._burst.clear()
        return (burst[-1], burst) if burst else (posted, [posted])

    # --- attachment ------------------------------------------------------------------

    def _attach_loop(self) -> None:
        reported: str | None = None
        while not self._stopping.is_set():
            try:
                requests, events = self.source.open()
            except ControlError as exc:
                if str(exc) != reported:
                    reported = str(exc)
                    self._post(EngineLost(reported))
                if not self.source.reconnects:
                    return
                self._stopping.wait(RETRY_SECONDS)
                continue
            reason = self._serve(requests, events)
            if detail := self.source.explain():
                reason = f"{reason}: {detail}"
            reported = reason
            self._post(EngineLost(reason))
            if not self.source.reconnects:
                return
            self._stopping.wait(RETRY_SECONDS)

    def _serve(self, requests: Any, events: Any) -> str:
        name = self.source.description
        client = ControlClient(name, conn=requests)
        subscription = ControlClient(name, conn=events)
        self._events = events
        try:
            info = client.info()
            spec = client.get_spec()
            with self._client_lock:
                self._client = client
            self.last_heard = time.monotonic()
            self._post(EngineAttached(info, spec))
            for message in subscription.subscribe():
                self.last_heard = time.monotonic()
                if self._stopping.is_set():
                    break
                if isinstance(message, StatsReport):
                    self._post_stats(message)
                elif isinstance(message, SpecChanged):
                    self._offer(SpecArrived(message.spec, message.source, message.origin))
                elif isinstance(message, EngineWorkerRestarted):
                    self._post(WorkerRestarted(message.direction, message.cause, message.at))
        except ControlError as exc:
            return str(exc)
        finally:
            with self._client_lock:
                if self._client is client:
                    self._client = None
            for conn in (client, subscription):
                with contextlib.suppress(OSError):
                    conn.close()
        return f"the engine went away ({name})"
