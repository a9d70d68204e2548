"""A typed client of a running engine's control socket, for scripts, the CLI and the TUI."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from pydantic import ValidationError

from engine.model.printable import printable
from engine.model.spec import Direction, Spec
from engine.model.stats import EngineStats
from engine.protocol.control import (
    DEFAULT_CONTROL_PATH,
    REPLY_TIMEOUT,
    ControlError,
    connect,
    deadline,
)
from engine.protocol.messages import (
    CaptureLost,
    CaptureRequest,
    Done,
    Error,
    FateRecords,
    Flush,
    GetInfo,
    GetSpec,
    GetStats,
    GetVersion,
    Info,
    Message,
    PatchSpec,
    SetSpec,
    SpecChanged,
    SpecReply,
    StatsReply,
    StatsReport,
    Subscribe,
    Version,
    WorkerRestarted,
    decode,
    encode,
)

T = TypeVar("T")

#: Largest reply read. A stats reply for 10,000 flows in each direction is some 7 MB (measured in
#: tests/unit/test_control_client_limits.py); anything larger is not the engine's.
MAX_REPLY = 64 * 1024 * 1024
#: A change's reply is awaited at least this long, whatever the client's own timeout: the
#: engine answers a change once both workers have it in force, or after waiting for them for
#: its APPLY_WAIT (2 s, engine/daemon/worker_pool.py) with an error saying which is not. A
#: client that gave up sooner was told "no answer" for a change the engine had put in force.
MIN_CHANGE_WAIT = 4.0
#: What a change's "no answer" adds: the engine drops a change whose client has hung up only
#: until it commits it, so silence says nothing about whether it is in force.
UNKNOWN_OUTCOME = "; the change may be in force or not: `linkshaper get` shows the spec in force"


def wait_for_engine(
    control: str, timeout: float = 10.0, alive: Callable[[], bool] = lambda: True
) -> None:
    """Until both workers have reported stats over `control`; `alive` says whether to go on."""
    deadline = time.monotonic() + timeout
    while True:
        if not alive():
            raise ControlError("the engine exited")
        try:
            with ControlClient(control) as client:
                stats = client.stats()
                if stats.ingress is not None and stats.egress is not None:
                    return
        except ControlError:
            pass
        if time.monotonic() > deadline:
            raise ControlError(f"the engine did not come up on {control}")
        time.sleep(0.05)


class ControlClient:
    """Requests and replies over one connection: a control socket's, or a Pipe end given as
    `conn` (then `path` only names it in errors)."""

    def __init__(
        self,
        path: str = DEFAULT_CONTROL_PATH,
        conn: Connection | None = None,
        timeout: float = REPLY_TIMEOUT,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self._conn = conn if conn is not None else connect(path, timeout)
        #: The connection failed or a reply came late: a later reply may answer an older
        #: request, so the client is to be dropped, not used again.
        self.broken = False

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _request(self, message: Message, expected: type[T]) -> T:
        reply = self.request(message)
        if isinstance(reply, Error):
            raise ControlError(printable(reply.message))
        if not isinstance(reply, expected):
            raise ControlError(f"unexpected reply {reply.type!r}")
        return reply

    def request(self, message: Message) -> Message:
        """Any request; the reply as it comes, an Error included."""
        try:
            self._conn.send_bytes(encode(message))
        except OSError as exc:
            self.broken = True
            raise ControlError(f"engine at {self.path} went away: {exc}") from None
        if not isinstance(message, SetSpec | PatchSpec):
            return self._read()
        try:
            return self._read(max(self.timeout, MIN_CHANGE_WAIT))
        except ControlError as exc:
            if str(exc).startswith("no answer"):
                raise ControlError(f"{exc}{UNKNOWN_OUTCOME}") from None
            raise

    def _read(self, timeout: float | None = None) -> Message:
        """The next message, within `timeout` (the client's own by default); ControlError for
        silence, a reply too large, or one that is not a linkshaper message."""
        try:
            with deadline(self._conn, self.path, self.timeout if timeout is None else timeout):
                data = self._conn.recv_bytes(MAX_REPLY)
        except ControlError:
            self.broken = True
            raise
        except OSError as exc:
            self.broken = True
            if "bad message length" in str(exc):
                raise ControlError(
                    f"the engine at {self.path} answered more than {MAX_REPLY >> 20} MiB"
                ) from None
            raise ControlError(f"engine at {self.path} went away: {exc}") from None
        except EOFError as exc:
            self.broken = True
            raise ControlError(f"engine at {self.path} went away: {exc}") from None
        return self._decode(data)

    def _decode(self, data: bytes) -> Message:
        try:
            return decode(data)
        except ValidationError as exc:
            first = exc.errors()[0]["msg"] if exc.errors() else str(exc)
            raise ControlError(
                f"the engine at {self.path} answered something that is not a linkshaper "
                f"message: {printable(first, 80)}"
            ) from None

    def get_spec(self) -> Spec:
        return self._request(GetSpec(), SpecReply).spec

    def set_spec(self, spec: Spec, source: str = "client") -> Spec:
        return self._request(SetSpec(spec=spec, source=source), SpecReply).spec

    def patch(self, changes: Mapping[str, Any], source: str = "client") -> Spec:
        return self._request(PatchSpec(changes=dict(changes), source=source), SpecReply).spec

    def stats(self) -> EngineStats:
        return self._request(GetStats(), StatsReply).stats

    def info(self) -> Info:
        return self._request(GetInfo(), Info)

    def version(self) -> str:
        """The engine's package version; ControlError from an engine older than the request."""
        return self._request(GetVersion(), Version).version

    def flush(self, direction: Direction | None = None, label: str | None = None) -> str:
        """Drop what the links hold (all, one direction's, or one link's); what was done."""
        return self._request(Flush(direction=direction, label=label), Done).message

    def capture(
        self, request: CaptureRequest, until: float | None = None
    ) -> Iterator[FateRecords | CaptureLost]:
        """Fate records as the workers send them (see `linkshaper capture`), until the engine
        goes away or the monotonic clock reaches `until`."""
        self._request(Subscribe(capture=request), Done)
        while True:
            wait = 1.0 if until is None else min(1.0, until - time.monotonic())
            if wait <= 0:
                return
            try:
                message = self.receive(wait)
            except ControlError:
                return
            if isinstance(message, FateRecords | CaptureLost):
                yield message

    def receive(self, timeout: float) -> Message | None:
        """The next message the engine sends (after a subscription), or None after `timeout`
        seconds; ControlError when the engine is gone."""
        try:
            if not self._conn.poll(timeout):
                return None
        except (EOFError, OSError) as exc:
            raise ControlError(f"engine at {self.path} went away: {exc}") from None
        return self._read()

    def subscribe(
        self, silence: float | None = None
    ) -> Iterator[SpecChanged | StatsReport | WorkerRestarted]:
        """Spec changes, stats samples and worker restarts, as they happen, until the engine
        goes away; with
        `silence`, ControlError when nothing comes for that many seconds (a stopped engine)."""
        self._request(Subscribe(), SpecReply)
        while True:
            try:
                ready = self._conn.poll(silence)  # between messages: no reply deadline
            except (EOFError, OSError):
                return
            if not ready:
                raise ControlError(f"no stats from the engine at {self.path} for {silence:g} s")
            try:
                message = self._read()
            except ControlError as exc:
                if "went away" in str(exc):
                    return
                raise
            if isinstance(message, SpecChanged | StatsReport | WorkerRestarted):
                yield message
