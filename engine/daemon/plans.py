"""A spec the gate admitted, sent to a worker in the compact form it puts in force.

Each worker gets only its own direction's `DirectionPlan` (engine.core.plan), pickled: plain
tuples and each distinct link spec once, so a spec of 10,000 flows is read in milliseconds
instead of seconds of JSON validation (it was validated once, by the gate). Pickle is safe
here only because both ends are this engine: the supervisor and the worker it spawned, on the
pipe between them; nothing from outside is ever read this way.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.core.plan import DirectionPlan, Interner, plans_of
from engine.model.spec import Direction, Spec
from engine.model.trace import TraceFile

#: What a pickled plan starts with on the pipe (JSON messages start with `{`).
PLAN_MARK = b"PLAN"


@dataclass(frozen=True)
class ConfigurePlan:
    """Supervisor to worker: put `plan` in force; answered with Configured(generation), as
    a Configure is."""

    plan: DirectionPlan
    generation: int
    #: The file each trace was read from when admitted (see gate.Admitted).
    trace_files: Mapping[str, TraceFile] = field(default_factory=dict)


def pack_plans(
    spec: Spec, generation: int, trace_files: Mapping[str, TraceFile], intern: Interner
) -> dict[Direction, bytes]:
    """The bytes that tell each direction's worker to put `spec` in force."""
    packed: dict[Direction, bytes] = {}
    for direction, plan in plans_of(spec, intern).items():
        used = set(plan.traces())
        files = {path: file for path, file in trace_files.items() if path in used}
        message = ConfigurePlan(plan, generation, files)
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
