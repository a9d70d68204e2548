"""App-wide messages: what the engine link tells the UI. Widget messages live with their
widgets; these cross from the engine link's threads into the app."""

from __future__ import annotations

from textual.message import Message

from engine.model.spec import Spec
from engine.model.stats import DirectionStats
from engine.protocol.messages import Info


class EngineAttached(Message):
    """A connection to the engine is up; `spec` is the one in force."""

    def __init__(self, info: Info, spec: Spec) -> None:
        super().__init__()
        self.info = info
        self.spec = spec


class EngineLost(Message):
    """No engine (any more); `reason` says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class SpecArrived(Message):
    """The engine put a spec in force; `source` says who asked (this UI's tag, `set`, ...),
    `origin` through which door (`control`, `http`, `sighup`)."""

    def __init__(self, spec: Spec, source: str, origin: str = "control") -> None:
        super().__init__()
        self.spec = spec
        self.source = source
        self.origin = origin
        #: Changes by other clients this one stands for (a burst is handed over as its
        #: latest, `EngineLink.take_spec`), and the latest of them: (source, origin).
        self.others = 0
        self.other: tuple[str, str] | None = None


class StatsArrived(Message):
    """One direction's counters, about ten times a second."""

    def __init__(self, stats: DirectionStats) -> None:
        super().__init__()
        self.stats = stats


class EngineRejected(Message):
    """The engine refused a change; the message names the field and the reason."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class LinkSettled(Message):
    """Every change sent has its answer and none is queued: `spec` is what the engine replied
    to the last one (None if it was refused or not a spec change), `refused` whether any was.
    The echo of an own change that came before its reply was skipped as stale: this is when
    the controls catch up with what the engine put in force."""

    def __init__(self, spec: Spec | None, refused: bool) -> None:
        super().__init__()
        self.spec = spec
        self.refused = refused


class WorkerRestarted(Message):
    """The engine started a direction's worker again after its process ended."""

    def __init__(self, direction: str, cause: str, at: float) -> None:
        super().__init__()
        self.direction = direction
        self.cause = cause
        self.at = at


class EngineDone(Message):
    """The engine carried out a request that changes no spec (a flush); says what it did."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message
