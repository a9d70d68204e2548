"""The engine as every HTTP route sees it: each change it passes on is stamped as coming from
the network, with the trace directory that applies, in this one place.

The supervisor's gate (engine/daemon/gate.py) applies the trace-file policy by that stamp, so
a route cannot forget it: a POST, a PATCH and a replay's steps (timeline_routes) are all
changes sent through here, whether the engine runs in this process or is reached over its
control socket (`linkshaper http`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from engine.protocol.messages import CaptureRequest, Message, PatchSpec, SetSpec
from engine.web.common import CaptureSource, Engine


class NetworkDoor:
    """An Engine that stamps every SetSpec and PatchSpec `origin="network"` and `trace_dir`
    (None: no new trace may be named), overriding whatever the request said."""

    def __init__(self, engine: Engine, trace_dir: str | None) -> None:
        self._engine = engine
        # Whole, here: the supervisor that applies it may run in another directory.
        self._trace_dir = os.path.realpath(trace_dir) if trace_dir is not None else None

    def handle(self, request: Message) -> Message:
        if isinstance(request, SetSpec | PatchSpec):
            request = request.model_copy(update={"origin": "network", "trace_dir": self._trace_dir})
        return self._engine.handle(request)

    def listen(self, callback: Callable[[Message], None]) -> Callable[[], None]:
        return self._engine.listen(callback)

    def capture(self, request: CaptureRequest) -> CaptureSource:
        return self._engine.capture(request)
