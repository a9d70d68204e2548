"""The supervisor's side of a worker: stats reports (its heartbeat), log notes, a capture's
fate records and the far ends' counts go up through an `Outbox` that never waits; control
messages (a spec, a flush, a capture, the stats pace, stop) come down the pipe and are acted
on, a Configure acknowledged once in force.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import os
import time
from multiprocessing.connection import Connection

from pydantic import ValidationError

from engine.core.deadlines import NANOSECONDS
from engine.core.plan import PlanDiff
from engine.daemon.channel import Outbox
from engine.daemon.collector import collector_paused
from engine.daemon.plans import ConfigurePlan, unpack_plan
from engine.daemon.worker.intake import Intake
from engine.daemon.worker.state import wall_offset_now
from engine.files.trace_files import traces_at, traces_in_force
from engine.kernel.afpacket import kernel_drops
from engine.model.fates import pack
from engine.protocol.messages import (
    Configure,
    Configured,
    FarEnds,
    FateRecords,
    Flush,
    Message,
    StartCapture,
    StatsPace,
    StatsReport,
    Stop,
    StopCapture,
    decode,
)

STATS_INTERVAL = 0.1
#: A staged plan (thousands of flows) is built this long at a time, between rounds of
#: forwarding with the links in force, BUILD_STEP links or rules between looks at the clock.
BUILD_SLICE = 0.002
BUILD_STEP = 32
#: Between slices the worker sleeps this long (or until a frame or a release wakes it): a
#: process that never sleeps waits behind every busy one on a loaded machine, for tens of
#: milliseconds, and the frames its links hold with it.
BUILD_PAUSE = 0.001
#: With nobody watching, stats go up this rarely, traffic or not: an idle engine stays asleep,
#: and a busy one spends nothing on figures nobody reads (a report, built cold after a sleep,
#: costs some 0.7 ms here). The supervisor asks for STATS_INTERVAL while a TUI, a stream or a
#: recorder watches, and for a report at once when a client asks for stats (`StatsPace`).
IDLE_STATS_INTERVAL = 1.0
#: The far ends' counts (for the seed's traffic profiles) go up at most this often.
FAR_ENDS_INTERVAL = 1.0
#: A capture's records go up at least with each stats report, and in batches of this many.
FATE_BATCH = 1024


class SupervisorSide(Intake):
    """Reports up, control messages down."""

    kernel_drops: int
    #: How often stats go up (`StatsPace`; slow until the supervisor says someone watches).
    stats_pace: float
    _far_ends_due: float

    def _init_supervisor_side(self) -> None:
        self.staged_generation = 0
        self.built_generation: int | None = None
        self.kernel_drops = 0
        self.notes = []
        self._far_ends_due = 0.0
        self.stats_pace = IDLE_STATS_INTERVAL
        self.pipeline.pace_talkers(self.stats_pace)

    def report(self, now: float, reports_dropped: int = 0) -> StatsReport:
        self._wall_offset = wall_offset_now()  # follow NTP's adjustments
        if self.interface_state == "up" and self.ports.packet:
            self.kernel_drops += kernel_drops(self.rx)
        stats = self.pipeline.stats(now, changed_only=True).model_copy(
            update={
                "pid": os.getpid(),
                "engine_saturated": self.kernel_drops,
                "tx_errors": self.tx_errors,
                "interface_state": self.interface_state,
                "interface_problem": self.interface_problem,
                "reports_dropped": reports_dropped,
            }
        )
        return StatsReport(stats=stats)

    def send_report(self, outbox: Outbox, now: float) -> None:
        """Notes first, then stats, and the far ends once in FAR_ENDS_INTERVAL if they
        changed, through `outbox` (never waiting: the heartbeat the supervisor watches);
        OSError if the supervisor is gone."""
        notes, self.notes = self.notes, []
        for note in notes:
            outbox.post(note)
        self._post_fates(outbox)
        outbox.post(self.report(now, outbox.dropped))
        if self.pipeline.talkers_changed and now >= self._far_ends_due:
            self._far_ends_due = now + FAR_ENDS_INTERVAL
            far_ends = self.pipeline.far_ends()
            outbox.post(FarEnds(direction=self.direction, far_ends=far_ends))
        outbox.flush()

    def send_fates(self, outbox: Outbox) -> None:
        """What a running capture has noted since the last call (see engine.core.fates)."""
        self._post_fates(outbox)
        outbox.flush()

    def _post_fates(self, outbox: Outbox) -> None:
        fates = self.pipeline.fates
        if fates is None or not (fates.records or fates.lost or outbox.fates_lost):
            return
        records, lost = fates.take()
        lost += outbox.fates_lost  # those the supervisor could not take, told with the next
        outbox.fates_lost = 0
        for first in range(0, len(records), FATE_BATCH):
            batch = records[first : first + FATE_BATCH]
            # Records carry wall-clock seconds; the offset is kept in nanoseconds.
            data, labels = pack(batch, self._wall_offset / NANOSECONDS)
            outbox.post(FateRecords(
                direction=self.direction, count=len(batch),
                data=base64.b64encode(data).decode(), labels=labels, lost=lost,
            ))  # fmt: skip
            lost = 0
        if lost:
            outbox.post(FateRecords(direction=self.direction, count=0, data="", labels=[],
                                    lost=lost))  # fmt: skip

    def control(self, message: Message | ConfigurePlan | None, now: float) -> bool:
        """Act on a message from the supervisor; False for Stop."""
        if isinstance(message, Stop):
            return False
        if isinstance(message, ConfigurePlan):
            plan = message.plan
            if isinstance(plan, PlanDiff):  # (the pipe keeps order: its base is the last)
                if message.base != self.staged_generation:
                    self.note("warning", f"a change of generation {message.base} applied to "
                              f"{self.staged_generation}")  # fmt: skip
                plan = plan.applied_to(self.pipeline.plan)
            traces = traces_at(plan.traces(), message.trace_files)
            self.pipeline.stage(plan, now, traces)
            self.staged_generation = message.generation
            self.build_staged(now)
        elif isinstance(message, Configure):
            traces = traces_in_force(message.spec, message.trace_files)
            self.pipeline.configure(message.spec, now, traces)
            if self.interface_state == "up":
                self.follow_spec()
        elif isinstance(message, Flush) and message.direction in (None, self.direction):
            self.pipeline.flush(message.label)
        elif isinstance(message, StartCapture):
            self.pipeline.start_capture(message.snaplen, message.drops_only)
            self.follow_spec()
        elif isinstance(message, StopCapture):
            self.pipeline.stop_capture()
        elif isinstance(message, StatsPace):
            self.stats_pace = max(STATS_INTERVAL, message.interval)
            self.pipeline.pace_talkers(self.stats_pace)
        return True

    def build_staged(self, now: float, slice_: float = BUILD_SLICE) -> bool:
        """Build the staged plan for up to `slice_` seconds (the links in force forward
        between slices); once it is in force, True, and the supervisor is told at the next
        `acknowledge`."""
        pipeline = self.pipeline
        until = time.monotonic() + slice_
        # A full pass over 10,000 new links' objects would stall for 0.1-0.5 s.
        with collector_paused():
            while pipeline.building:
                if pipeline.build(now, BUILD_STEP) >= 0:
                    if self.interface_state == "up":
                        self.follow_spec()
                    self.built_generation = self.staged_generation
                    gc.freeze()  # (the links in force live long: out of the collector's way)
                    return True
                if time.monotonic() >= until:
                    return False
            return True

    def acknowledge(self, outbox: Outbox, message: Message | ConfigurePlan | None) -> None:
        """Tell the supervisor a Configure is in force (the pipe gone: the loop ends anyway):
        a plan once it is built (`build_staged`), which may be some rounds later."""
        generation = message.generation if isinstance(message, Configure) else None
        if self.built_generation is not None:
            generation, self.built_generation = self.built_generation, None
        if generation is not None:
            outbox.post(Configured(direction=self.direction, generation=generation))
            with contextlib.suppress(OSError):
                outbox.flush()

    def receive(self, conn: Connection) -> Message | ConfigurePlan | None:
        """The next message from the supervisor: Stop if it is gone (the pipe closed), None
        for one that cannot be read (a bug: both sides speak engine.protocol.messages), which
        is reported to the supervisor's log instead of dropped unseen."""
        try:
            data = conn.recv_bytes()
            return unpack_plan(data) or decode(data)
        except (EOFError, OSError):
            return Stop()
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            self.note(
                "warning", f"ignored a message: {errors[0]['msg'] if errors else 'not a message'}"
            )
            return None
