"""Reading a timeline's lines: each validated as it is read (the usual forms in one go), steps
checked to come in order and their patches on a neutral base; the first bad line raises."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from engine.model.spec import PASS_THROUGH, SpecError
from engine.model.spec_patch import patch_spec
from engine.model.validation_errors import describe_validation_error
from engine.timelines.timeline import (
    HEADER_KEY,
    Header,
    PatchStep,
    SpecStep,
    StatsLine,
    Step,
    Timeline,
    TimelineError,
)


def _parse_line(data: Any) -> Header | Step | StatsLine:
    if not isinstance(data, dict):
        raise TimelineError("not a JSON object")
    if HEADER_KEY in data:
        return Header.model_validate(data)
    if "stats" in data:
        return StatsLine.model_validate(data)
    if "spec" in data:
        return SpecStep.model_validate(data)
    if "set" in data:
        return PatchStep.model_validate(data)
    raise TimelineError('a line needs "spec", "set" or "stats" (or is the header)')


#: Patches already checked on a neutral base, remembered by their text, so that a long
#: timeline that sets the same values again and again (a generated toggle, a recording of
#: one) is checked at a few microseconds a line instead of a whole spec's validation each.
CHECKED_PATCHES_REMEMBERED = 4096
#: Only patches this short are remembered: the memory held stays under 4096 x 1 KiB.
CHECKED_PATCH_KEY_BYTES = 1024


_checked_patches: dict[str, str | None] = {}  # repr of a patch: its problem, or None


def _check_patch(changes: dict[str, Any]) -> None:
    """Fields and values checked on a neutral base (SpecError), before anything is applied.
    (`repr` tells JSON values apart exactly, `1`, `1.0` and `true` included.)"""
    key = repr(changes)
    if len(key) > CHECKED_PATCH_KEY_BYTES:
        patch_spec(PASS_THROUGH, changes)
        return
    if key not in _checked_patches:
        if len(_checked_patches) >= CHECKED_PATCHES_REMEMBERED:
            _checked_patches.clear()
        try:
            patch_spec(PASS_THROUGH, changes)
            _checked_patches[key] = None
        except SpecError as exc:
            _checked_patches[key] = str(exc)
    problem = _checked_patches[key]
    if problem is not None:
        raise SpecError(problem)


def _check_patch_at(changes: dict[str, Any], where: str) -> None:
    try:
        _check_patch(changes)
    except SpecError as exc:
        raise TimelineError(f"{where}: set: {exc}") from None


#: Lines as the recorder (and most generators) write them, `{"at": T, "KIND": ...`: these
#: are decoded and validated in one go by their model (a line with any other key fails it
#: and takes the general way, which reports it as always).
_USUAL_LINE = re.compile(r'\s*\{"at":\s*[-+0-9.eE]+,\s*"(stats|set|spec)":')
_USUAL_MODELS: dict[str, type[StatsLine | PatchStep | SpecStep]] = {
    "stats": StatsLine, "set": PatchStep, "spec": SpecStep,
}  # fmt: skip


def _decoded(lines: Iterable[str | bytes], name: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        if isinstance(line, bytes):
            try:
                line = line.decode()
            except UnicodeDecodeError as exc:
                raise TimelineError(
                    f"{name} line {number}: not UTF-8 text (byte {exc.start})"
                ) from None
        yield number, line


def validated_items(
    lines: Iterable[str | bytes], name: str, *, check_patches: bool = True, stats: bool = True
) -> Iterator[tuple[int, Header | Step | StatsLine]]:
    """Each line validated as it is read, with its line number; the first bad one raises.
    Without `stats`, stats lines are skipped unvalidated (a replay does not use them)."""
    seen_lines = False
    last_at = 0.0
    for number, raw in _decoded(lines, name):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{name} line {number}"
        usual = _USUAL_LINE.match(text)
        if usual and (stats or usual[1] != "stats"):
            try:  # as written by us: decoded and validated in one go, 2-3 times faster
                fast = _USUAL_MODELS[usual[1]].model_validate_json(text)
            except ValueError:
                pass  # the general way below, for the general message
            else:
                if isinstance(fast, PatchStep | SpecStep):
                    last_at = _step_in_order(fast, last_at, where, check_patches)
                seen_lines = True
                yield number, fast
                continue
        try:
            data = json.loads(text)
            if not stats and isinstance(data, dict) and "stats" in data and HEADER_KEY not in data:
                seen_lines = True
                continue
            item = _parse_line(data)
        except json.JSONDecodeError as exc:
            raise TimelineError(f"{where}: not JSON: {exc.msg}") from None
        except ValidationError as exc:
            raise TimelineError(f"{where}: {describe_validation_error(exc)}") from None
        except TimelineError as exc:
            raise TimelineError(f"{where}: {exc}") from None
        except RecursionError:
            raise TimelineError(f"{where}: nested too deeply") from None
        except Exception as exc:  # a bad line must be an error message, never a crash
            raise TimelineError(f"{where}: cannot be read ({type(exc).__name__})") from None
        if isinstance(item, Header):
            if seen_lines:
                raise TimelineError(f"{where}: the header must be the first line")
        elif isinstance(item, PatchStep | SpecStep):
            last_at = _step_in_order(item, last_at, where, check_patches)
        seen_lines = True
        yield number, item


def _step_in_order(
    step: PatchStep | SpecStep, last_at: float, where: str, check_patches: bool
) -> float:
    """The step's time, checked not to come before the step before it (and its patch checked
    against a neutral spec if asked)."""
    if step.at < last_at:
        raise TimelineError(f"{where}: at: {step.at} comes before {last_at}")
    if check_patches and isinstance(step, PatchStep):
        _check_patch_at(step.set, where)
    return step.at


def parse_timeline(lines: Iterable[str], name: str = "timeline") -> Timeline:
    """Every line validated before anything is used; the first bad one is reported."""
    header: Header | None = None
    steps: list[Step] = []
    stats: list[StatsLine] = []
    for _, item in validated_items(lines, name):
        if isinstance(item, Header):
            header = item
        elif isinstance(item, StatsLine):
            stats.append(item)
        else:
            steps.append(item)
    return Timeline(steps=steps, stats=stats, header=header, name=name)
