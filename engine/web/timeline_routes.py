"""The timeline endpoints: recording on the server, and one replay at a time."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.params import Depends

from engine.protocol.messages import Message, SetSpec, SpecChanged, StatsReport
from engine.timelines.recorder import TimelineRecorder
from engine.timelines.replay import MAX_SPEED, MIN_SPEED, ReplayRunner, ReplayStatus
from engine.timelines.timeline import TimelineError, parse_timeline
from engine.web.common import NOT_THERE, Engine, NdjsonResponse, spec_in_force

TIMELINE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
}


class Timelines:
    """Recording to a temporary file and one replay at a time, for the API's endpoints."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.recorder: TimelineRecorder | None = None
        self.unlisten: Callable[[], None] | None = None
        self.runner: ReplayRunner | None = None

    def start_recording(self, stats: bool) -> None:
        with self.lock:
            self.stop_recording()
            fd, path = tempfile.mkstemp(prefix="linkshaper-", suffix=".jsonl")
            os.close(fd)
            recorder = TimelineRecorder(path, stats=stats)
            recorder.spec(spec_in_force(self.engine), "http-record")

            def on_message(message: Message) -> None:
                if isinstance(message, SpecChanged):
                    recorder.spec(message.spec, message.source)
                elif isinstance(message, StatsReport):
                    recorder.stats(message.stats)

            self.recorder = recorder
            self.unlisten = self.engine.listen(on_message)

    def stop_recording(self) -> str | None:
        recorder, self.recorder = self.recorder, None
        if self.unlisten is not None:
            self.unlisten()
            self.unlisten = None
        if recorder is None:
            return None
        recorder.close()
        text = recorder.path.read_text()
        recorder.path.unlink(missing_ok=True)
        return text

    def recorded_so_far(self) -> str | None:
        return self.recorder.path.read_text() if self.recorder is not None else None

    def replay(self, text: str, speed: float, loop: bool) -> ReplayStatus:
        timeline = parse_timeline(text.splitlines(), name="timeline")
        runner = ReplayRunner(
            timeline,
            lambda spec: self.engine.handle(SetSpec(spec=spec, source="replay")),
            spec_in_force(self.engine),
            speed=speed,
            loop=loop,
        )
        with self.lock:
            if self.runner is not None:
                self.runner.stop()
            self.runner = runner
        threading.Thread(target=runner.run, daemon=True, name="http-replay").start()
        return runner.status()


def timeline_routes(
    engine: Engine, changes: list[Depends], errors: dict[int | str, dict[str, Any]]
) -> APIRouter:
    router = APIRouter()
    timelines = Timelines(engine)

    @router.post("/timeline/record", dependencies=changes, responses=errors,
              summary="Start recording every change (and stats) on the server")  # fmt: skip
    def record_start(stats: bool = Query(False)) -> dict[str, str]:
        timelines.start_recording(stats)
        return {"recording": "started"}

    @router.get("/timeline/record", response_class=NdjsonResponse, responses=NOT_THERE,
             summary="The recording so far, as JSON Lines")  # fmt: skip
    def record_get() -> NdjsonResponse:
        text = timelines.recorded_so_far()
        if text is None:
            raise HTTPException(status_code=404, detail="not recording")
        return NdjsonResponse(text)

    @router.delete("/timeline/record", response_class=NdjsonResponse, dependencies=changes,
                responses={**errors, **NOT_THERE},
                summary="Stop recording; the timeline as JSON Lines")  # fmt: skip
    def record_stop() -> NdjsonResponse:
        with timelines.lock:
            text = timelines.stop_recording()
        if text is None:
            raise HTTPException(status_code=404, detail="not recording")
        return NdjsonResponse(text)

    @router.post("/timeline/replay", dependencies=changes, responses=errors,
              openapi_extra=TIMELINE_BODY,
              summary="Replay a timeline (JSON Lines body), checked whole first")  # fmt: skip
    async def replay_start(
        request: Request,
        speed: float = Query(1.0, ge=MIN_SPEED, le=MAX_SPEED),
        loop: bool = Query(False),
    ) -> dict[str, Any]:
        text = (await request.body()).decode(errors="replace")
        try:  # checking every step takes a while for a long timeline: not on the event loop
            status = await run_in_threadpool(timelines.replay, text, speed, loop)
        except TimelineError as exc:
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

    return router


def _status(status: ReplayStatus) -> dict[str, Any]:
    return {
        "position": status.position, "total": status.total, "cycle": status.cycle,
        "elapsed": round(status.elapsed, 3), "next_at": status.next_at,
        "time_to_next": status.time_to_next, "paused": status.paused,
        "finished": status.finished, "speed": status.speed,
    }  # fmt: skip
