"""A spec the gate admitted, sent to a worker in the compact form it puts in force.

Each worker gets only its own direction's `DirectionPlan` (engine.core.plan), pickled: plain
tuples and each distinct link spec once (or, when the flows are the same as in the plan it
had, only the links that changed: a `PlanDiff`), so a spec of 10,000 flows is read in milliseconds
instead of seconds of JSON validation (it was validated once, by the gate). Pickle is safe
here only because both ends are this engine: the supervisor and the worker it spawned, on the
pipe between them; nothing from outside is ever read this way.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.core.plan import DirectionPlan, Interner, PlanDiff, diff_plans, plans_of
from engine.model.spec import DIRECTIONS, Direction, Spec
from engine.model.trace import TraceFile

#: What a pickled plan starts with on the pipe (JSON messages start with `{`).
PLAN_MARK = b"PLAN"


@dataclass(frozen=True)
class ConfigurePlan:
    """Supervisor to worker: put `plan` in force; answered with Configured(generation), as
    a Configure is."""

    #: The whole plan, or what changed of the one of generation `base` (the worker's last).
    plan: DirectionPlan | PlanDiff
    generation: int
    #: The file each trace was read from when admitted (see gate.Admitted).
    trace_files: Mapping[str, TraceFile] = field(default_factory=dict)
    base: int = 0


#: Each direction's plan last sent to its worker, and its generation.
Sent = dict[Direction, tuple[int, DirectionPlan]]


def pack_plans(
    spec: Spec,
    generation: int,
    trace_files: Mapping[str, TraceFile],
    intern: Interner,
    sent: Sent | None = None,
    directions: tuple[Direction, ...] = DIRECTIONS,
) -> dict[Direction, bytes]:
    """The bytes that tell each of `directions`' workers to put `spec` in force: with `sent`
    (updated here), only what changed since the plan sent before if its flows are the same
    (`diff_plans`), else the whole plan."""
    packed: dict[Direction, bytes] = {}
    for direction, plan in plans_of(spec, intern, directions).items():
        used = set(plan.traces())
        files = {path: file for path, file in trace_files.items() if path in used}
        before = sent.get(direction) if sent is not None else None
        diff = diff_plans(before[1], plan) if before is not None else None
        if before is not None and diff is not None:
            message = ConfigurePlan(diff, generation, files, base=before[0])
        else:
            message = ConfigurePlan(plan, generation, files)
        if sent is not None:
            sent[direction] = (generation, plan)
        packed[direction] = PLAN_MARK + pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return packed


def unpack_plan(data: bytes) -> ConfigurePlan | None:
    """The plan in `data`, or None if `data` is not one (then it is a JSON message)."""
    if not data.startswith(PLAN_MARK):
        return None
    message = pickle.loads(data[len(PLAN_MARK) :])
    if not isinstance(message, ConfigurePlan):
        raise TypeError("not a plan")
    return message
