"""A pipeline for tests that take every frame from `release`, including those `forward` let
through at once (which production sends itself, from the receive buffer)."""

from __future__ import annotations

from engine.core.packet import HeldRun
from engine.core.pipeline import DirectionPipeline
from engine.model.spec import Direction, Spec


class ReceivingPipeline(DirectionPipeline):
    def __init__(self, spec: Spec, direction: Direction, now: float, seed: int | None) -> None:
        #: Frames `forward` let through, handed out by the next `release` ahead of held ones.
        self.passed: list[bytes] = []
        super().__init__(spec, direction, now, seed)

    def receive(self, frame: bytes, now: float) -> None:
        """`forward`, keeping what it lets through for `release`."""
        if self.forward(frame, now):
            self.passed.append(frame)

    def release(self, now: float, serialise: bool = True) -> list[bytes | HeldRun]:
        passed: list[bytes | HeldRun] = [*self.passed]
        self.passed = []
        return passed + super().release(now, serialise)

    @property
    def idle(self) -> bool:
        return not self.passed and super().idle

    @property
    def straight(self) -> bool:
        return not self.passed and super().straight
