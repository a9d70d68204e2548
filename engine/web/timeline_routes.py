"""The timeline endpoints: recording on the server, and one replay at a time."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.params import Depends
from fastapi.responses import StreamingResponse

from engine.model.errors import LinkshaperError
from engine.model.spec import Spec
from engine.protocol.messages import Error, SetSpec
from engine.timelines.reading import StreamedTimeline, TimelineTooLong, timeline_from_bytes
from engine.timelines.recorder import TimelineRecorder
from engine.timelines.replay import MAX_SPEED, MIN_SPEED, ReplayRunner, ReplayStatus
from engine.timelines.timeline import TimelineError
from engine.web.common import (
    ERROR_CONTENT,
    NOT_THERE,
    ApiError,
    Engine,
    NdjsonResponse,
    spec_in_force,
)

TIMELINE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
}


#: Steps a replay sent over HTTP may have (413 beyond). A replay reads its body as it goes,
#: but checks it whole first at up to ~70 us a step: this keeps that under seconds. The
#: 16 MiB body limit alone admitted ~880,000 (200,000 took 2.2 GB and 59 s of CPU before
#: replays were streamed); a recording of an ordinary session has far fewer.
MAX_HTTP_REPLAY_STEPS = 100_000
#: A recording is sent in pieces this large, read from its file as the client takes them:
#: never the whole file in memory, however many read it at once.
RECORDING_CHUNK_BYTES = 64 * 1024
#: A replay's answer waits this long at most for the steps due at its start to be in force
#: (a change waits up to 2 s for the workers), so that a first step the engine refuses is a
#: 422 and not only an error in the status later; looked at this often meanwhile.
FIRST_CHANGE_WAIT = 3.0
FIRST_CHANGE_POLL = 0.01

log = logging.getLogger(__name__)


class StepRefused(LinkshaperError):
    """The engine answered a replayed step with an error."""


class _RecordingChunks:
    """The first `length` bytes of an open recording, in chunks: the recorder may append
    meanwhile (it writes whole lines; `length` ends on one). The file is closed at the end,
    or when this is dropped unread."""

    def __init__(self, file: BinaryIO, length: int) -> None:
        self.file = file
        self.left = length

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = self.file.read(min(RECORDING_CHUNK_BYTES, self.left)) if self.left > 0 else b""
        if not chunk:
            self.file.close()
            raise StopIteration
        self.left -= len(chunk)
        return chunk


def _recording_response(chunks: _RecordingChunks) -> StreamingResponse:
    return StreamingResponse(
        chunks, media_type=NdjsonResponse.media_type,
        headers={"Content-Length": str(chunks.left)},
    )  # fmt: skip


class Timelines:
    """Recording to a temporary file and one replay at a time, for the API's endpoints."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.recorder: TimelineRecorder | None = None
        self.unlisten: Callable[[], None] | None = None
        self.runner: ReplayRunner | None = None

    def start_recording(self, stats: bool) -> bool:
        """Start a recording; False if one runs already (it is never thrown away unread)."""
        with self.lock:
            if self.recorder is not None:
                return False
            # Root's file: in a directory of its own (0700, a name nobody can guess), made
            # with O_EXCL, so no one can plant a link there or read it.
            directory = tempfile.mkdtemp(prefix="linkshaper-recording-")
            fd, path = tempfile.mkstemp(suffix=".jsonl", dir=directory)
            recorder = TimelineRecorder(path, stats=stats, file=os.fdopen(fd, "wb"))
            recorder.spec(spec_in_force(self.engine), "http-record")
            self.recorder = recorder
            self.unlisten = self.engine.listen(recorder.take)
            return True

    def _open(self, recorder: TimelineRecorder) -> _RecordingChunks:
        fd = os.open(recorder.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        return _RecordingChunks(os.fdopen(fd, "rb"), recorder.written)

    def _stop_recording(self, read: bool = True) -> _RecordingChunks | None:
        recorder, self.recorder = self.recorder, None
        if self.unlisten is not None:
            self.unlisten()
            self.unlisten = None
        if recorder is None:
            return None
        recorder.close()
        try:
            return self._open(recorder) if read else None  # still readable once unlinked
        finally:
            recorder.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # only ours is in it; never fail a stop on it
                recorder.path.parent.rmdir()

    def stop_recording(self) -> _RecordingChunks | None:
        """The whole recording, to send; its file is gone once it has been read."""
        with self.lock:
            return self._stop_recording()

    def recorded_so_far(self) -> _RecordingChunks | None:
        with self.lock:
            return self._open(self.recorder) if self.recorder is not None else None

    def replay(self, body: bytes, speed: float, loop: bool) -> ReplayStatus:
        """Check the timeline whole (TimelineError), then replay it in a thread of its own,
        reading `body` as it goes; a refused step stops it, with the reason in its status."""
        timeline = timeline_from_bytes(body, name="timeline")
        try:
            timeline.check(MAX_HTTP_REPLAY_STEPS)
            runner = ReplayRunner(
                timeline, self._apply, spec_in_force(self.engine), speed=speed, loop=loop
            )
        except BaseException:
            timeline.close()
            raise
        with self.lock:
            if self.runner is not None:
                self.runner.stop()
            self.runner = runner
        threading.Thread(
            target=self._run, args=(runner, timeline), daemon=True, name="http-replay"
        ).start()
        return _first_change(runner)

    def _apply(self, spec: Spec) -> None:
        reply = self.engine.handle(SetSpec(spec=spec, source="replay"))
        if isinstance(reply, Error):
            raise StepRefused(reply.message)

    @staticmethod
    def _run(runner: ReplayRunner, timeline: StreamedTimeline) -> None:
        try:
            runner.run()
        except Exception:  # in its status; said once here
            log.warning("replay stopped: %s", runner.error)
        finally:
            timeline.close()


def _first_change(runner: ReplayRunner) -> ReplayStatus:
    """The replay's status once the steps due at its start are in force, or refused (then
    StepRefused: the answer says so, not only the status later), or FIRST_CHANGE_WAIT on.
    A timeline whose first step comes later is answered at once."""
    deadline = time.monotonic() + FIRST_CHANGE_WAIT
    while True:
        status = runner.status()
        if status.error is not None:
            raise StepRefused(status.error)
        due_now = status.next_at is not None and status.time_to_next == 0.0
        if status.finished or runner.changes or not due_now or time.monotonic() > deadline:
            return status
        time.sleep(FIRST_CHANGE_POLL)


def timeline_routes(
    engine: Engine, changes: list[Depends], errors: dict[int | str, dict[str, Any]]
) -> APIRouter:
    router = APIRouter()
    timelines = Timelines(engine)
    _recording_routes(router, timelines, changes, errors)
    _replay_routes(router, timelines, changes, errors)
    return router


def _recording_routes(
    router: APIRouter,
    timelines: Timelines,
    changes: list[Depends],
    errors: dict[int | str, dict[str, Any]],
) -> None:
    """Recording on the server: start it, read it so far, stop it and take it."""

    @router.post("/timeline/record", dependencies=changes,
              responses={**errors, 409: {"model": ApiError, "content": ERROR_CONTENT,
                                         "description": "A recording runs already"}},
              summary="Start recording every change (and stats) on the server")  # fmt: skip
    def record_start(stats: bool = Query(False)) -> dict[str, str]:
        if not timelines.start_recording(stats):
            raise HTTPException(
                status_code=409,
                detail="recording: one runs already; DELETE /timeline/record ends it and "
                "returns it",
            )
        return {"recording": "started"}

    @router.get("/timeline/record", response_class=NdjsonResponse, responses=NOT_THERE,
             summary="The recording so far, as JSON Lines")  # fmt: skip
    def record_get() -> StreamingResponse:
        chunks = timelines.recorded_so_far()
        if chunks is None:
            raise HTTPException(status_code=404, detail="not recording")
        return _recording_response(chunks)

    @router.delete("/timeline/record", response_class=NdjsonResponse, dependencies=changes,
                responses={**errors, **NOT_THERE},
                summary="Stop recording; the timeline as JSON Lines")  # fmt: skip
    def record_stop() -> StreamingResponse:
        chunks = timelines.stop_recording()
        if chunks is None:
            raise HTTPException(status_code=404, detail="not recording")
        return _recording_response(chunks)


def _replay_routes(
    router: APIRouter,
    timelines: Timelines,
    changes: list[Depends],
    errors: dict[int | str, dict[str, Any]],
) -> None:
    """One replay at a time: start it (checked whole first), see where it is, steer it."""

    @router.post("/timeline/replay", dependencies=changes, responses=errors,
              openapi_extra=TIMELINE_BODY,
              summary="Replay a timeline (JSON Lines body), checked whole first")  # fmt: skip
    async def replay_start(
        request: Request,
        speed: float = Query(1.0, ge=MIN_SPEED, le=MAX_SPEED),
        loop: bool = Query(False),
    ) -> dict[str, Any]:
        body = await request.body()
        try:  # checking every step takes a while for a long timeline: not on the event loop
            status = await run_in_threadpool(timelines.replay, body, speed, loop)
        except TimelineTooLong as exc:
            raise HTTPException(status_code=413, detail=str(exc)) from None
        except (TimelineError, StepRefused) as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return _status(status)

    @router.get("/timeline/replay", responses=NOT_THERE, summary="Where the replay is")
    def replay_status() -> dict[str, Any]:
        if timelines.runner is None:
            raise HTTPException(status_code=404, detail="no replay")
        return _status(timelines.runner.status())

    @router.post("/timeline/replay/{action}", dependencies=changes,
              responses={**errors, **NOT_THERE},
              summary="pause, resume or stop the replay")  # fmt: skip
    def replay_control(action: Literal["pause", "resume", "stop"]) -> dict[str, Any]:
        runner = timelines.runner
        if runner is None:
            raise HTTPException(status_code=404, detail="no replay")
        if action not in ("pause", "resume", "stop"):
            raise HTTPException(
                status_code=404, detail=f"action: {action!r} is not pause, resume or stop"
            )
        getattr(runner, action)()
        return _status(runner.status())


def _status(status: ReplayStatus) -> dict[str, Any]:
    return {
        "position": status.position, "total": status.total, "cycle": status.cycle,
        "elapsed": round(status.elapsed, 3), "next_at": status.next_at,
        "time_to_next": status.time_to_next, "paused": status.paused,
        "finished": status.finished, "speed": status.speed, "error": status.error,
    }  # fmt: skip
