"""The spec a timeline's steps have built so far, for a replay and a chart that read the steps as
they come."""

from __future__ import annotations

import copy
from typing import Any

from engine.model.errors import LinkshaperError
from engine.model.spec import Spec, SpecError
from engine.model.spec_patch import patch_spec
from engine.timelines.timeline import SpecStep, Step


class StepFailed(LinkshaperError, ValueError):
    """A step that could not be resolved or applied: `step N (at T s): reason`."""


def step_failure(number: int, at: float, reason: object) -> StepFailed:
    return StepFailed(f"step {number} (at {at} s): {reason}")


#: Patches held unresolved at most: a reader that never asks for the spec (a chart of a
#: timeline without stats) still resolves them in batches this large.
MAX_PENDING_PATCHES = 10_000


class Resolver:
    """The spec a timeline's steps have built so far, resolved only when asked for: the last
    whole spec and the patches since, merged (a later value of a path replaces an earlier
    one, in the order they were last set) and validated once. For steps that are each valid
    where they come (every step was checked), this is the spec applying them one by one
    gives, at one validation instead of one a step."""

    def __init__(self, base: Spec) -> None:
        self._base = base
        self._pending: list[tuple[int, float, dict[str, Any]]] = []

    def add(self, step: Step, number: int) -> None:
        if isinstance(step, SpecStep):
            self._base = step.spec
            self._pending.clear()
            return
        self._pending.append((number, step.at, step.set))
        if len(self._pending) >= MAX_PENDING_PATCHES:
            self.spec()

    def spec(self) -> Spec:
        """The spec now; StepFailed naming the first step that does not apply."""
        if not self._pending:
            return self._base
        merged: dict[str, Any] = {}
        for _, _, changes in self._pending:
            for path, value in changes.items():
                merged.pop(path, None)
                merged[path] = copy.deepcopy(value) if isinstance(value, dict | list) else value
        try:
            self._base = patch_spec(self._base, merged)
        except SpecError:
            self._base = self._one_by_one()  # raises, naming the step
        self._pending.clear()
        return self._base

    def _one_by_one(self) -> Spec:
        current = self._base
        for number, at, changes in self._pending:
            try:
                current = patch_spec(current, copy.deepcopy(changes))
            except SpecError as exc:
                self._pending.clear()
                raise step_failure(number, at, exc) from None
        return current  # each alone applies: the merge failed only at once
