"""`GET /capture`: what `linkshaper capture` writes, streamed as a pcapng file."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.params import Depends
from fastapi.responses import StreamingResponse

from engine.model.fates import DEFAULT_SNAPLEN, MAX_SNAPLEN, wanted_records
from engine.model.spec import MAX_LABEL_LENGTH, Direction
from engine.protocol.control import ControlError
from engine.protocol.messages import CaptureLost, CaptureRequest, FateRecords
from engine.web.common import Engine

#: A capture over HTTP ends after this long at most (the default is 10 s).
MAX_SECONDS = 3600.0


class PcapngResponse(StreamingResponse):
    media_type = "application/x-pcapng"


def capture_routes(
    engine: Engine, changes: list[Depends], errors: dict[int | str, dict[str, Any]]
) -> APIRouter:
    """A capture holds the heads of the frames that cross the link: it needs the token, as
    changes do, when one is set."""
    router = APIRouter()

    @router.get("/capture", response_class=PcapngResponse, dependencies=changes,
                responses={200: {"content": {"application/x-pcapng": {}}}, **errors},
                summary="What the links do to each frame, as pcapng")  # fmt: skip
    async def capture(
        request: Request,
        direction: Annotated[Direction | None, Query()] = None,
        drops_only: bool = False,
        link: Annotated[str | None, Query(max_length=MAX_LABEL_LENGTH)] = None,
        snaplen: Annotated[int, Query(ge=14, le=MAX_SNAPLEN)] = DEFAULT_SNAPLEN,
        seconds: Annotated[float, Query(gt=0, le=MAX_SECONDS)] = 10.0,
        count: Annotated[int, Query(ge=0)] = 0,
    ) -> StreamingResponse:
        wanted = CaptureRequest(direction=direction, drops_only=drops_only, label=link,
                                snaplen=snaplen)  # fmt: skip
        try:
            source = engine.capture(wanted)
        except ControlError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        loop = asyncio.get_running_loop()

        async def stream() -> AsyncIterator[bytes]:
            # Here, not at the top: scapy costs the API's process 0.6 s to start.
            from engine.captures.pcapng import CaptureWriter

            buffer = io.BytesIO()
            writer = CaptureWriter(buffer)
            deadline = loop.time() + seconds
            try:
                yield _take(buffer)  # the section header: a reader knows at once
                while loop.time() < deadline and not await request.is_disconnected():
                    message = await loop.run_in_executor(None, source.get, 0.5)
                    if isinstance(message, CaptureLost):
                        writer.lost_records(message.records)
                    elif isinstance(message, FateRecords):
                        writer.lost_records(message.lost)
                        records = wanted_records(message.data, message.labels, link,
                                                 drops_only)  # fmt: skip
                        if count:
                            records = records[: count - writer.written]
                        writer.write(message.direction, records)
                        yield _take(buffer)
                        if count and writer.written >= count:
                            return
            finally:
                source.close()

        return PcapngResponse(stream())

    return router


def _take(buffer: io.BytesIO) -> bytes:
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data
