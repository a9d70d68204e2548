"""Every message that crosses a process boundary, as typed pydantic models sent as JSON.

Two conversations use them: the supervisor and its workers (over a multiprocessing Pipe), and
control clients and the supervisor (over a `multiprocessing.connection` socket). JSON rather
than pickle, so that a control client can never make the engine run code, and so that the
protocol is documented by these models alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter

from engine.model.change_source import ChangeSource
from engine.model.spec import MAX_LABEL_LENGTH, MAX_TRACE_PATH, Direction, Spec
from engine.model.stats import DirectionStats, EngineStats
from engine.model.trace import TraceFile


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Supervisor -> worker


class Configure(_Message):
    """Supervisor to worker: put `spec` in force; answered with Configured(generation)."""

    type: Literal["configure"] = "configure"
    spec: Spec
    generation: int = 0
    #: The file each trace was read from when admitted (`gate.Admitted`): the worker reads
    #: that file or none, never what a link swapped in since points at.
    trace_files: dict[str, TraceFile] = Field(default_factory=dict)


class Configured(_Message):
    """Worker to supervisor: the Configure of `generation` is in force for what arrives next,
    so a change's reply can wait until it is (Supervisor.change)."""

    type: Literal["configured"] = "configured"
    direction: Direction
    generation: int


class Stop(_Message):
    type: Literal["stop"] = "stop"


class StartCapture(_Message):
    """Note every frame's fate from now on (engine.core.fates), and send them up."""

    type: Literal["start_capture"] = "start_capture"
    snaplen: int = Field(ge=14, le=65535)
    drops_only: bool = False


class StopCapture(_Message):
    type: Literal["stop_capture"] = "stop_capture"


class StatsPace(_Message):
    """How often to report: fast while someone watches (a TUI, a stream, a recorder) or has
    just asked for stats, slow otherwise, so that the engine spends nothing on figures nobody
    reads, idle or not. A worker reports at once on receiving it (the asker waits for that)."""

    type: Literal["stats_pace"] = "stats_pace"
    interval: float


class Flush(_Message):
    """Drop what links hold, queued and delayed: every link of both directions, or only
    `direction`'s, or only the link labelled `label` (`default` or a flow's). Sent by a client
    to the supervisor, and by the supervisor on to the workers."""

    type: Literal["flush"] = "flush"
    direction: Direction | None = None
    label: str | None = None


# Worker -> supervisor


class StatsReport(_Message):
    type: Literal["stats"] = "stats"
    stats: DirectionStats


class FarEnds(_Message):
    """Every far end a worker remembers, with its wire packets and bits since it started
    (`flowtop.FarEnd`), for the seed's traffic profiles; sent at most once a second, and only
    when they changed."""

    type: Literal["far_ends"] = "far_ends"
    direction: Direction
    far_ends: list[tuple[int, int, int, int, int, int]]


class WorkerError(_Message):
    type: Literal["worker_error"] = "worker_error"
    direction: Direction
    message: str


class FateRecords(_Message):
    """Worker to supervisor to capture subscribers: fates, packed (`engine.core.fates.pack`,
    base64), times on the wall clock; `lost`: records the worker could not keep since the
    last batch (its buffer was full)."""

    type: Literal["fate_records"] = "fate_records"
    direction: Direction
    count: int
    data: str
    labels: list[str]
    lost: int = 0


class CaptureLost(_Message):
    """To a capture subscriber: this many records were lost because it read too slowly."""

    type: Literal["capture_lost"] = "capture_lost"
    records: int


class WorkerNote(_Message):
    """Something the operator should read in the engine's log, said once per change (an
    interface gone or back) or once a minute per kind (send errors)."""

    type: Literal["worker_note"] = "worker_note"
    direction: Direction
    level: Literal["info", "warning"]
    message: str


# Client -> supervisor


class GetSpec(_Message):
    type: Literal["get_spec"] = "get_spec"


#: Who a change comes from, for the gate's trace-file policy (engine/daemon/gate.py): `local`
#: (the control socket's root clients, the spec file) may name any file; `network` (the HTTP
#: API, whichever process serves it) only files in `trace_dir`, and none without one.
Origin = Literal["local", "network"]
#: Which door a change came in through, as the supervisor saw it (never from `source`): a
#: control-socket client (the TUI, the CLI, `linkshaper replay`), the HTTP API (its replays
#: too; `linkshaper http` is a control-socket client that declares itself so with origin
#: `network`, a declaration any key holder could make), or SIGHUP (the spec file read again).
Door = Literal["control", "http", "sighup"]


class _Change(_Message):
    """A SetSpec or PatchSpec. The door it came by may say how to tell that its caller no
    longer waits for it (gone, or past its deadline): the supervisor drops such a change
    instead of putting it in force after the caller was told it failed. Never sent."""

    _abandoned: Callable[[], bool] | None = PrivateAttr(default=None)

    def abandoned(self) -> bool:
        return self._abandoned is not None and self._abandoned()

    def abandoned_when(self, check: Callable[[], bool]) -> None:
        self._abandoned = check


class SetSpec(_Change):
    """Replace the whole spec."""

    type: Literal["set_spec"] = "set_spec"
    spec: Spec
    source: ChangeSource = "client"
    origin: Origin = "local"
    trace_dir: str | None = Field(default=None, min_length=1, max_length=MAX_TRACE_PATH)


class PatchSpec(_Change):
    """Set single fields by dotted path; values may carry units (`"50ms"`)."""

    # A value is sent as given, NaN and infinities too (pydantic would send null, which
    # unsets a field): the gate refuses them in the same words whichever door sent them.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    type: Literal["patch_spec"] = "patch_spec"
    changes: dict[str, Any]
    source: ChangeSource = "client"
    origin: Origin = "local"
    trace_dir: str | None = Field(default=None, min_length=1, max_length=MAX_TRACE_PATH)


class GetStats(_Message):
    """Both directions' figures, made after the request arrived (the workers report at once
    for it): whatever went through before the request is counted."""

    type: Literal["get_stats"] = "get_stats"


class GetInfo(_Message):
    type: Literal["get_info"] = "get_info"


class GetVersion(_Message):
    """Which linkshaper the engine is (`linkshaper doctor` compares it with its own): an engine
    older than this request answers it with an Error."""

    type: Literal["get_version"] = "get_version"


class GetProfile(_Message):
    """The seed's traffic profile of a direction (`engine.model.flowtop`)."""

    type: Literal["get_profile"] = "get_profile"
    direction: Direction


class CaptureRequest(BaseModel):
    """What a capture wants (`linkshaper capture`): the fates of one direction or both, all
    or drops only, of one flow link or all, each frame cut at `snaplen` bytes."""

    model_config = ConfigDict(extra="forbid")

    direction: Direction | None = None
    drops_only: bool = False
    label: str | None = Field(default=None, max_length=MAX_LABEL_LENGTH)
    snaplen: int = Field(default=128, ge=14, le=65535)


class Subscribe(_Message):
    """After the reply, the connection carries SpecChanged and StatsReport messages only; or,
    with `capture`, FateRecords and CaptureLost only (the reply is then Done)."""

    type: Literal["subscribe"] = "subscribe"
    capture: CaptureRequest | None = None


class CaptureToFile(_Message):
    """Have the engine write a capture to `path` (pcapng) until StopCaptureToFile: what the
    TUI's capture key does, whichever way it reaches the engine. One at a time."""

    type: Literal["capture_to_file"] = "capture_to_file"
    path: str = Field(min_length=1, max_length=4096)
    capture: CaptureRequest = Field(default_factory=CaptureRequest)


class StopCaptureToFile(_Message):
    type: Literal["stop_capture_to_file"] = "stop_capture_to_file"


# Supervisor -> client


class SpecReply(_Message):
    type: Literal["spec"] = "spec"
    spec: Spec


class SpecChanged(_Message):
    type: Literal["spec_changed"] = "spec_changed"
    spec: Spec
    source: ChangeSource
    at: float
    origin: Door = "control"


class StatsReply(_Message):
    type: Literal["stats_snapshot"] = "stats_snapshot"
    stats: EngineStats


class Info(_Message):
    type: Literal["info"] = "info"
    outer: str
    inner: str
    supervisor_pid: int
    worker_pids: dict[str, int]
    spec_path: str | None
    control_path: str | None


class Version(_Message):
    """The engine's package version (`engine.model.version.__version__`)."""

    type: Literal["version"] = "version"
    version: str = Field(max_length=100)


class ProfileReply(_Message):
    type: Literal["profile"] = "profile"
    direction: Direction
    #: The profile file's bytes, base64.
    data: str


class Error(_Message):
    """A request refused (`message` says why), or, with `not_in_force`, a change made (it is
    the spec now) that a worker has not put in force by the reply's deadline: stalled or
    restarting, it gets the spec when it is back. HTTP answers the latter 503, not 422."""

    type: Literal["error"] = "error"
    message: str
    not_in_force: bool = False


class WorkerRestarted(_Message):
    """Sent to subscribers when the supervisor has started a direction's worker again after
    its process ended (a crash, a kill, or stalled and killed): the link was down in that
    direction meanwhile, and what it held is gone. `cause` says how it ended; `at` is when it
    was back (wall clock)."""

    type: Literal["worker_restarted"] = "worker_restarted"
    direction: Direction
    pid: int
    old_pid: int | None = None
    cause: str = Field(default="", max_length=200)
    at: float


class Done(_Message):
    """A request that changes no spec was carried out (`Flush`)."""

    type: Literal["done"] = "done"
    message: str


Message = Annotated[
    Configure
    | Configured
    | Stop
    | StartCapture
    | StopCapture
    | FateRecords
    | CaptureLost
    | StatsPace
    | Flush
    | StatsReport
    | FarEnds
    | WorkerError
    | WorkerNote
    | GetSpec
    | SetSpec
    | PatchSpec
    | GetStats
    | GetInfo
    | GetVersion
    | GetProfile
    | Subscribe
    | CaptureToFile
    | StopCaptureToFile
    | SpecReply
    | SpecChanged
    | StatsReply
    | Info
    | Version
    | ProfileReply
    | Error
    | WorkerRestarted
    | Done,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)

#: What a control client may ask (the supervisor's own messages with its workers are not).
Request = Annotated[
    GetSpec | SetSpec | PatchSpec | Flush | GetStats | GetInfo | GetVersion | GetProfile
    | Subscribe | CaptureToFile | StopCaptureToFile,
    Field(discriminator="type"),
]  # fmt: skip
_REQUEST_ADAPTER: TypeAdapter[Request] = TypeAdapter(Request)
#: The `type` of every Request, as a refusal lists them.
REQUEST_TYPES = (
    "get_spec", "set_spec", "patch_spec", "flush", "get_stats", "get_info", "get_version",
    "get_profile", "subscribe", "capture_to_file", "stop_capture_to_file",
)  # fmt: skip


def encode(message: _Message) -> bytes:
    """A whole spec sent to the engine leaves out what is at its default (the engine's model
    has the same defaults): the engine checks every field it gets, and a spec of 10,000 flows
    written out in full is five times the work of the fields set (issue 38)."""
    if isinstance(message, SetSpec):  # (`type`, a default too, must stay)
        envelope = message.model_dump_json(exclude={"spec"})
        spec = message.spec.model_dump_json(exclude_defaults=True)
        return f'{envelope[:-1]},"spec":{spec}}}'.encode()
    return message.model_dump_json().encode()


def decode(data: bytes) -> Message:
    """Raises pydantic.ValidationError for anything that is not one of the messages."""
    return _ADAPTER.validate_json(data)


def decode_request(data: bytes) -> Request:
    """A control client's request; pydantic.ValidationError for anything else."""
    return _REQUEST_ADAPTER.validate_json(data)
