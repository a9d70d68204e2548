"""`GET /capture`: what `linkshaper capture` writes, streamed as a pcapng file."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.params import Depends
from fastapi.responses import StreamingResponse

from engine.model.fates import DEFAULT_SNAPLEN, MAX_SNAPLEN, wanted_records
from engine.model.spec import MAX_LABEL_LENGTH, Direction
from engine.protocol.control import ControlError
from engine.protocol.messages import CaptureLost, CaptureRequest, FateRecords
from engine.web.common import (
    ERROR_CONTENT,
    ApiError,
    CaptureSource,
    ClosingStreamResponse,
    Engine,
    Slots,
)

#: A capture over HTTP ends after this long at most (the default is 10 s).
MAX_SECONDS = 3600.0
#: Most captures over HTTP at once: each reads the engine's fate records in a thread of the
#: pool and makes the workers copy frame heads; a person debugging a link runs one or two.
MAX_CAPTURES = 4
#: pcapng bytes a capture holds for a reader slower than the link: beyond it records are
#: dropped and counted (the file says how many), and the engine's own backlog stays drained.
CAPTURE_BUFFER_BYTES = 1024 * 1024
#: A capture whose reader has taken nothing for this long while its buffer is full is ended.
CAPTURE_STALL_SECONDS = 30.0
#: How long one wait for the engine's next records lasts (the pump's pace when nothing comes).
POLL_SECONDS = 0.5


class PcapngResponse(ClosingStreamResponse):
    media_type = "application/x-pcapng"


def capture_routes(
    engine: Engine, changes: list[Depends], errors: dict[int | str, dict[str, Any]]
) -> APIRouter:
    """A capture holds the heads of the frames that cross the link: it needs the token, as
    changes do, when one is set."""
    router = APIRouter()
    slots = Slots(MAX_CAPTURES, "captures")
    busy: dict[int | str, dict[str, Any]] = {
        503: {"model": ApiError, "description": "Too many captures", "content": ERROR_CONTENT}
    }

    @router.get("/capture", response_class=PcapngResponse, dependencies=changes,
                responses={200: {"content": {"application/x-pcapng": {}}}, **errors, **busy},
                summary="What the links do to each frame, as pcapng")  # fmt: skip
    async def capture(
        direction: Annotated[Direction | None, Query()] = None,
        drops_only: bool = False,
        link: Annotated[str | None, Query(max_length=MAX_LABEL_LENGTH)] = None,
        snaplen: Annotated[int, Query(ge=14, le=MAX_SNAPLEN)] = DEFAULT_SNAPLEN,
        seconds: Annotated[float, Query(gt=0, le=MAX_SECONDS)] = 10.0,
        count: Annotated[int, Query(ge=0)] = 0,
    ) -> StreamingResponse:
        wanted = CaptureRequest(direction=direction, drops_only=drops_only, label=link,
                                snaplen=snaplen)  # fmt: skip
        give_back = slots.take()
        try:
            source = engine.capture(wanted)
        except ControlError as exc:
            give_back()
            raise HTTPException(status_code=404, detail=str(exc)) from None
        except BaseException:
            give_back()
            raise
        pump = CapturePump(source, link, drops_only, count, seconds)

        def close() -> None:
            pump.stop()
            give_back()

        return PcapngResponse(pump.stream(), on_close=close)

    return router


class CapturePump:
    """Reads the engine's records as they come, whether or not the HTTP reader keeps up, into
    a buffer of CAPTURE_BUFFER_BYTES: the engine's backlog for the capture stays drained and
    a stalled reader costs at most the buffer."""

    def __init__(
        self, source: CaptureSource, link: str | None, drops_only: bool, count: int,
        seconds: float,
    ) -> None:  # fmt: skip
        # Here, not at the top: scapy costs the API's process 0.6 s to start.
        from engine.captures.pcapng import CaptureWriter

        self.source = source
        self.link = link
        self.drops_only = drops_only
        self.count = count
        self.seconds = seconds
        self._file = io.BytesIO()
        self.writer = CaptureWriter(self._file)
        self.chunks: list[bytes] = [_take(self._file)]  # the section header: a reader knows
        self.buffered = len(self.chunks[0])
        self.done = False
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._full_since: float | None = None

    async def stream(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._pump(loop))
        try:
            while True:
                if not self.chunks:
                    if self.done:
                        return
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                data = b"".join(self.chunks)
                self.chunks.clear()
                self.buffered = 0
                self._full_since = None
                yield data
        finally:
            self.stop()

    def stop(self) -> None:
        self.done = True
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        deadline = loop.time() + self.seconds
        try:
            while loop.time() < deadline and not self.done:
                message = await loop.run_in_executor(None, self.source.get, POLL_SECONDS)
                if isinstance(message, CaptureLost):
                    self.writer.lost_records(message.records)
                elif isinstance(message, FateRecords):
                    self.writer.lost_records(message.lost)
                    if self._take_records(message, loop):
                        return
                if self._full_since is not None and (
                    loop.time() - self._full_since > CAPTURE_STALL_SECONDS
                ):
                    return  # the reader took nothing for that long: end the capture
        finally:
            self.done = True
            self._ready.set()
            self.source.close()

    def _take_records(self, message: FateRecords, loop: asyncio.AbstractEventLoop) -> bool:
        """Write what this capture wants of a batch, or count it lost if the buffer is full;
        whether the capture has all it asked for."""
        records = wanted_records(message.data, message.labels, self.link, self.drops_only)
        if self.count:
            records = records[: self.count - self.writer.written]
        if not records:
            return False
        if self.buffered >= CAPTURE_BUFFER_BYTES:
            self.writer.lost_records(len(records))
            if self._full_since is None:
                self._full_since = loop.time()
            return False
        self.writer.write(message.direction, records)
        chunk = _take(self._file)
        self.chunks.append(chunk)
        self.buffered += len(chunk)
        self._ready.set()
        return bool(self.count) and self.writer.written >= self.count


def _take(buffer: io.BytesIO) -> bytes:
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data
