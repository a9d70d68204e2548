"""Timelines: a tuning session as JSON Lines, recorded or written by hand, and replayed.

Format, version 1 (one JSON object per line; blank lines and lines starting with `#` are
ignored):

    {"linkshaper_timeline": 1, "started": "2026-11-21T10:00:00+00:00"}   optional header
    {"at": 0, "spec": {...}}                  the whole spec in force from `at` seconds on
    {"at": 5, "set": {"egress.latency": "80ms"}}      or some fields (dotted paths, units)
    {"at": 10, "spec": {...}, "ramp": 30}     reach the step's values linearly over 30 s
    {"at": 1.2, "stats": {...}}               a stats sample (replay skips these; plot uses)

Steps are in order of `at`. A step may carry `"source"` (who made the change, in
recordings). Ramps move the numeric fields of every link (rate, loss, latency, jitter,
jitter strength, the netem probabilities and correlations, queue limits and the AQM's
settings while the discipline stays, slot delays) from the spec in force when the ramp
starts; every other field (names, switches, `gap`, overheads, outages) takes the step's
value at once.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.files.regular_files import read_regular_file
from engine.model.errors import LinkshaperError
from engine.model.spec import MAX_SPEC_BYTES, PASS_THROUGH, LinkPair, LinkSpec, Spec, SpecError
from engine.model.spec_patch import patch_spec
from engine.model.stats import DirectionStats
from engine.model.validation_errors import describe_validation_error

VERSION = 1
HEADER_KEY = "linkshaper_timeline"


class TimelineError(LinkshaperError, ValueError):
    """A timeline that cannot be used: one line naming the file, the line and the field."""


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Header(_Line):
    linkshaper_timeline: int = Field(ge=1, le=VERSION)
    started: str | None = None
    note: str | None = None


class SpecStep(_Line):
    at: float = Field(ge=0)
    spec: Spec
    ramp: float = Field(default=0.0, ge=0)
    source: str | None = None


class PatchStep(_Line):
    at: float = Field(ge=0)
    set: dict[str, Any]
    ramp: float = Field(default=0.0, ge=0)
    source: str | None = None


class StatsLine(_Line):
    at: float = Field(ge=0)
    stats: DirectionStats


Step = SpecStep | PatchStep


class StepSource(Protocol):
    """What a replay reads: the steps in order, as many times as it loops."""

    @property
    def name(self) -> str: ...

    @property
    def duration(self) -> float: ...

    @property
    def step_count(self) -> int: ...

    def iter_steps(self) -> Iterator[Step]: ...


class StatsSource(Protocol):
    """What a chart reads: the steps and the stats samples, each in order."""

    def iter_steps(self) -> Iterator[Step]: ...

    def iter_stats(self) -> Iterator[StatsLine]: ...


@dataclass(frozen=True)
class Timeline:
    """A timeline held whole in memory (a short one, or the TUI's last minutes). Long files
    are read as they go instead: see `open_timeline`."""

    steps: list[Step]
    stats: list[StatsLine]
    header: Header | None = None
    name: str = "timeline"

    @property
    def duration(self) -> float:
        return max((s.at + s.ramp for s in self.steps), default=0.0)

    @property
    def step_count(self) -> int:
        return len(self.steps)

    def iter_steps(self) -> Iterator[Step]:
        return iter(self.steps)

    def iter_stats(self) -> Iterator[StatsLine]:
        return iter(self.stats)

    def resolve(self, base: Spec) -> list[ResolvedStep]:
        """Whole specs for every step, patches applied in order onto `base` (the spec in force
        when a replay starts). Raises TimelineError naming the step's line."""
        current = base
        resolved: list[ResolvedStep] = []
        for index, step in enumerate(self.steps):
            if isinstance(step, SpecStep):
                target = step.spec
            else:
                try:
                    target = patch_spec(current, step.set)
                except SpecError as exc:
                    raise TimelineError(f"{self.name}: step {index + 1}: {exc}") from None
            resolved.append(ResolvedStep(step.at, target, step.ramp, step.source))
            current = target
        return resolved


@dataclass(frozen=True)
class ResolvedStep:
    at: float
    spec: Spec
    ramp: float = 0.0
    source: str | None = None


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
#: A stats line as recorded, as bytes: the reader of steps passes over these undecoded.
_RECORDED_STATS_LINE = re.compile(rb'\s*\{"at":\s*[-+0-9.eE]+,\s*"stats":')
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


def _items(
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
    for _, item in _items(lines, name):
        if isinstance(item, Header):
            header = item
        elif isinstance(item, StatsLine):
            stats.append(item)
        else:
            steps.append(item)
    return Timeline(steps=steps, stats=stats, header=header, name=name)


#: Largest timeline file read (an hour of stats at ten a second is well under it).
MAX_TIMELINE_BYTES = 256 * 1024 * 1024
#: A timeline file is read in pieces this large.
READ_CHUNK_BYTES = 256 * 1024
#: Longest line read: a whole spec, at its own largest, with room for the step around it.
MAX_LINE_BYTES = MAX_SPEC_BYTES + 64 * 1024


def read_timeline(path: str | Path) -> Timeline:
    """A timeline file read whole into memory; long files are better `open_timeline`d."""
    try:
        data = read_regular_file(str(path), MAX_TIMELINE_BYTES)
        text = data.decode()
    except OSError as exc:
        raise TimelineError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise TimelineError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_timeline(text.splitlines(), name=str(path))


class TimelineTooLong(TimelineError):
    """A timeline with more steps than its reader takes (HTTP: 413)."""


@dataclass(frozen=True)
class TimelineSummary:
    """What a checking pass learnt, kept instead of the steps themselves."""

    steps: int
    stats: int
    duration: float
    header: Header | None


class StreamedTimeline:
    """A timeline read line by line, from a file or from bytes held compactly, as many times
    as a replay loops: memory stays bounded whatever its length. `check()` validates it whole
    in one streaming pass, as `parse_timeline` would; a line that changed since is reported
    when it is read again."""

    def __init__(
        self, lines: Callable[[], Iterator[bytes]], name: str, on_close: Callable[[], None]
    ) -> None:
        self._lines: Callable[[], Iterator[bytes]] | None = lines
        self.name = name
        self._on_close = on_close
        self._summary: TimelineSummary | None = None

    def _read(self) -> Iterator[bytes]:
        if self._lines is None:
            raise TimelineError(f"{self.name}: closed")
        return self._lines()

    def check(self, max_steps: int | None = None) -> TimelineSummary:
        """Every line validated (patches on a neutral base); TimelineTooLong beyond
        `max_steps` steps."""
        header: Header | None = None
        steps = stats = 0
        duration = 0.0
        for number, item in _items(self._read(), self.name):
            if isinstance(item, Header):
                header = item
            elif isinstance(item, StatsLine):
                stats += 1
            else:
                steps += 1
                duration = max(duration, item.at + item.ramp)
                if max_steps is not None and steps > max_steps:
                    raise TimelineTooLong(f"{self.name} line {number}: more than {max_steps} steps")
        self._summary = TimelineSummary(steps, stats, duration, header)
        return self._summary

    @property
    def summary(self) -> TimelineSummary:
        return self._summary if self._summary is not None else self.check()

    @property
    def duration(self) -> float:
        return self.summary.duration

    @property
    def step_count(self) -> int:
        return self.summary.steps

    def iter_steps(self) -> Iterator[Step]:
        """The steps, read again from the start (stats lines skipped undecoded where they
        have the recorded form)."""
        for _, item in _items(self._steps_lines(), self.name, check_patches=False, stats=False):
            if isinstance(item, SpecStep | PatchStep):
                yield item

    def _steps_lines(self) -> Iterator[bytes]:
        for line in self._read():
            yield b"" if _RECORDED_STATS_LINE.match(line) else line

    def iter_stats(self) -> Iterator[StatsLine]:
        """The stats lines, read again from the start; other lines are left to `iter_steps`
        (a line that cannot hold the key "stats" is not decoded here)."""
        candidates = (line if b'"stats"' in line else b"" for line in self._read())
        for _, item in _items(candidates, self.name, check_patches=False):
            if isinstance(item, StatsLine):
                yield item

    def close(self) -> None:
        """Let go of the bytes or the file (a finished replay keeps only its summary)."""
        if self._lines is not None:
            self._lines = None
            self._on_close()

    def __enter__(self) -> StreamedTimeline:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def timeline_from_bytes(data: bytes, name: str = "timeline") -> StreamedTimeline:
    """A timeline over `data` as it is (one bytes object, no copy per line)."""
    held: list[bytes] = [data]

    def lines() -> Iterator[bytes]:
        return iter(io.BytesIO(held[0])) if held else iter(())

    return StreamedTimeline(lines, name, held.clear)


def open_timeline(path: str | Path) -> StreamedTimeline:
    """A timeline file opened once (a regular file of at most MAX_TIMELINE_BYTES) and read
    line by line each time it is walked; call `check()` before relying on it."""
    name = str(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise TimelineError(f"{name}: {exc.strerror or exc}") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise TimelineError(f"{name}: not a regular file")
        if status.st_size > MAX_TIMELINE_BYTES:
            raise TimelineError(f"{name}: larger than {MAX_TIMELINE_BYTES} bytes")
    except BaseException:
        os.close(fd)
        raise

    def lines() -> Iterator[bytes]:
        """The lines from the start, at an offset of this walk's own (`pread`): a chart
        walks the steps and the stats side by side."""
        offset = 0
        number = 0
        partial = b""
        while chunk := os.pread(fd, READ_CHUNK_BYTES, offset):
            offset += len(chunk)
            if offset > MAX_TIMELINE_BYTES:  # it grew since it was opened
                raise TimelineError(f"{name}: larger than {MAX_TIMELINE_BYTES} bytes")
            pieces = (partial + chunk).split(b"\n")
            partial = pieces.pop()
            if len(partial) > MAX_LINE_BYTES:
                raise TimelineError(f"{name} line {number + len(pieces) + 1}: longer than "
                                    f"{MAX_LINE_BYTES} bytes")  # fmt: skip
            for line in pieces:
                number += 1
                yield line
        if partial:
            yield partial

    return StreamedTimeline(lines, name, lambda: os.close(fd))


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


# --- ramps ----------------------------------------------------------------------------------

#: Integer fields that ramp (rounded), beside every float field of a LINK.
_RAMPED_INTEGERS = ("rate",)
_QUEUE_INTEGERS = ("packets", "bytes", "flows", "quantum")


def _mix(a: float, b: float, f: float) -> float:
    return a + (b - a) * f


def _mix_fields(start: BaseModel, end: BaseModel, f: float, integers: tuple[str, ...]
                ) -> dict[str, Any]:  # fmt: skip
    """The numeric fields set on both sides, mixed: floats as they are, `integers` rounded
    (and at least 1); booleans, names and fields unset on one side take the end's value."""
    values: dict[str, Any] = {}
    for key in type(end).model_fields:
        a, b = getattr(start, key), getattr(end, key)
        if isinstance(a, float) and isinstance(b, float):
            values[key] = _mix(a, b, f)
        elif key in integers and isinstance(a, int) and isinstance(b, int):
            values[key] = max(1, round(_mix(a, b, f)))
    return values


def _mix_link(start: LinkSpec, end: LinkSpec, f: float) -> LinkSpec:
    values = _mix_fields(start, end, f, _RAMPED_INTEGERS)
    if end.rate == 0 or start.rate == 0:
        values["rate"] = round(_mix(start.rate, end.rate, f))
    same_discipline = start.queue.discipline == end.queue.discipline
    queue = _mix_fields(start.queue, end.queue, f, _QUEUE_INTEGERS)
    if not same_discipline:  # another AQM's settings do not mix with these
        queue = {k: v for k, v in queue.items() if k in ("packets", "bytes", "ms", "held_bytes")}
    values["queue"] = end.queue.model_copy(update=queue)
    if start.slot is not None and end.slot is not None:
        values["slot"] = end.slot.model_copy(update=_mix_fields(start.slot, end.slot, f, ()))
    # An outage's schedule starts again whenever it changes: it takes the end's at once.
    return end.model_copy(update=values)


def _mix_pair(start: LinkPair, end: LinkPair, f: float) -> LinkPair:
    return LinkPair(
        ingress=_mix_link(start.ingress, end.ingress, f),
        egress=_mix_link(start.egress, end.egress, f),
    )


def interpolate(start: Spec, end: Spec, fraction: float) -> Spec:
    """The spec `fraction` (0..1) of the way from `start` to `end`. Flows are matched by
    label; a flow only in `end` takes its values at once."""
    f = min(1.0, max(0.0, fraction))
    if f >= 1.0:
        return end
    starts = {flow.label: flow.link for flow in start.flows}
    flows = [
        flow.model_copy(update={"link": _mix_pair(starts[flow.label], flow.link, f)})
        if flow.label in starts
        else flow
        for flow in end.flows
    ]
    return end.model_copy(
        update={"default_link": _mix_pair(start.default_link, end.default_link, f), "flows": flows}
    )
