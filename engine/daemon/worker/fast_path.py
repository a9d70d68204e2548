"""The worker's side of the kernel fast path (issue 38): while its direction is transparent
(engine.core.fast_path decides), tc's redirect forwards the frames (engine.kernel.tc_redirect)
and the worker only reads and counts them; the moment it is not, the worker forwards again.

A packet socket sees a redirected frame too (taps run before tc ingress), so no frame is
lost in either switch if each is made in this order:

- to the kernel: the redirect first, then the worker forwards what it reads until it finds
  its socket empty after the redirect was in place (what came before it was read), then
  stops sending;
- to the engine: what waits in the socket is dropped unsent (the kernel forwarded all of it),
  then the worker sends again and the redirect goes.

What both forwarded in the overlap is counted (`fast_path_duplicates`, from tc's counters).
Where tc is refused the worker says so once and forwards itself from then on.
"""

from __future__ import annotations

import contextlib
import socket
import time

from engine.core.fast_path import DirectionState, FastPathClock
from engine.daemon.worker.interfaces import Interfaces
from engine.kernel.afpacket import kernel_drops, sample_frames, take_every_frame
from engine.kernel.mmsg import BATCH
from engine.kernel.tc_redirect import KernelRedirect, TcRefused
from engine.protocol.messages import StatsReport

#: The worker stops sending once its socket is found empty this long (seconds) after the
#: redirect is in place (a frame still on its way past tc then has long been queued), or
#: gives up handing over after HANDOVER_LIMIT (the redirect goes, the clock starts again).
HANDOVER_MARGIN = 0.001
HANDOVER_LIMIT = 5.0
#: While the kernel forwards, the worker's socket takes about one frame in this many (for
#: its top talkers and traffic profiles); tc's counters count them all.
SAMPLE_EVERY = 64
#: At most this many batches are dropped unsent when the engine takes over (bounded: a
#: stream faster than the worker reads would otherwise keep it here).
DISCARD_BATCHES = 4096


class FastPathRoom(Interfaces):
    """Switches the direction between the kernel's redirect and the worker."""

    #: (Set by `_init_fast_path`, which runs once the interfaces are opened: None before.)
    _redirect: KernelRedirect | None = None
    handing_over_since: float | None = None

    def _init_fast_path(self, enabled: bool) -> None:
        """`enabled`: `run` without `--no-fast-path`, on the interfaces' own packet sockets."""
        self.kernel_forwards = False
        self.fast_path_switches = 0
        self.fast_path_duplicates = 0
        #: Frames and bytes the kernel forwarded, summed over finished fast-path spells.
        self.kernel_frames = 0
        self.kernel_bytes = 0
        self._fast_clock = FastPathClock()
        #: Since when the redirect is in place while the worker still forwards (None: no
        #: hand-over under way; see `_begin_hand_over`).
        self.handing_over_since: float | None = None
        #: tc's counters as last counted on the link, this spell.
        self._counted = (0, 0)
        #: tc's count just after the sampling filter went on, this hand-over.
        self._unsampled = 0
        self._redirect: KernelRedirect | None = None
        if self.ports.packet:
            # One left by a worker before this one (killed, with or without the fast path
            # then: an engine now run with --no-fast-path must not leave it forwarding
            # unshaped): the engine forwards first.
            redirect = KernelRedirect(self.rx_ifname, self.tx_ifname)
            try:
                redirect.remove()
                if enabled and self.interface_state == "up":
                    redirect.prepare()  # before the first frame is sent: see `prepare`
            except TcRefused as exc:
                if enabled:
                    self._refused(exc)
            else:
                self._redirect = redirect if enabled else None

    def open(self) -> None:
        """Both sockets open again (the interfaces came back): the clsact qdiscs made before a
        frame is sent on them (KernelRedirect.prepare says why)."""
        super().open()
        if self._redirect is not None:
            try:
                self._redirect.prepare()
            except TcRefused as exc:
                self._refused(exc)

    def follow_fast_path(self, now: float, flushed: bool = False) -> None:
        """Switch, or go on with a hand-over, if the decision says so (`flushed`: a flush of
        this direction just came)."""
        if self._redirect is None or self.interface_state != "up":
            return
        pipeline = self.pipeline
        state = DirectionState(
            pipeline.transparent, pipeline.idle, pipeline.building, pipeline.fates is not None,
            pipeline.straight,
        )  # fmt: skip
        wanted = self._fast_clock.kernel_forwards(state, now, flushed)
        since = self.handing_over_since
        if not wanted:
            if since is not None:
                self._end_hand_over(kernel=False)
            elif self.kernel_forwards:
                self._take_back()
        elif since is None:
            if not self.kernel_forwards:
                self._begin_hand_over()
        elif self._caught_up(since):
            self._end_hand_over(kernel=True)
        elif time.monotonic() > since + HANDOVER_LIMIT:
            self._end_hand_over(kernel=False)
            self._fast_clock.quiet_since = None
            self.note("info", "the kernel fast path waits: the worker is behind its socket")

    def _caught_up(self, since: float) -> bool:
        """Whether a drain found the socket empty HANDOVER_MARGIN after the hand-over began
        (looked at now if no frame woke the worker since)."""
        if self.emptied_at < since + HANDOVER_MARGIN <= time.monotonic():
            self.drain()
        return self.emptied_at >= since + HANDOVER_MARGIN

    def _begin_hand_over(self) -> None:
        """The redirect in place, and the socket sampling what comes from then on; the worker
        forwards on what it reads until a drain finds the socket empty HANDOVER_MARGIN later
        (a frame tc did not redirect was queued to the socket before tc saw it, so by then it
        has been read and sent: `follow_fast_path` then ends the hand-over)."""
        assert self._redirect is not None
        try:
            self._redirect.install()
        except TcRefused as exc:
            self._refused(exc)
            return
        sample_frames(self.rx, SAMPLE_EVERY)
        try:  # what came between the two: queued whole to the socket, and redirected too
            self._unsampled = self._redirect.counters()[0]
        except TcRefused as exc:
            self._refused(exc)
            return
        self.handing_over_since = time.monotonic()
        self.emptied_at = 0.0

    def _end_hand_over(self, kernel: bool) -> None:
        """The hand-over done: the kernel forwards from now on (`kernel`), or called off (the
        engine is needed again, or the worker never caught up): every frame to the socket,
        then the redirect gone. What the kernel forwarded meanwhile that the worker did not
        read (all but about one in SAMPLE_EVERY) is counted on the link."""
        assert self._redirect is not None
        self.handing_over_since = None
        try:
            if kernel:
                spell = self._redirect.counters()
            else:
                take_every_frame(self.rx)
                self.pipeline.sample_far_ends(1)
                spell = self._redirect.remove()
        except TcRefused as exc:
            self.kernel_forwards = False
            self._refused(exc)
            return
        # The worker read and sent every frame the redirect forwarded before the sampling
        # filter was on (`_unsampled`, by tc's count just after: a frame or two over), and
        # about one in SAMPLE_EVERY of the rest; the link counted those, not the others.
        whole = min(self._unsampled, spell[0])
        sampled = (spell[0] - whole) // SAMPLE_EVERY
        share = (spell[0] - whole - sampled) / spell[0] if spell[0] else 0.0
        self.pipeline.passed_kernel(spell[0] - whole - sampled, int(spell[1] * share))
        self.fast_path_duplicates += whole + sampled
        self.sampled_frames = self.sampled_bytes = 0
        self._counted = spell
        if kernel:
            self.kernel_forwards = True
            self.fast_path_switches += 1
            # Only now does each frame read stand for SAMPLE_EVERY: before, the socket still
            # held frames queued ahead of the sampling filter, each of them one frame (scaled,
            # they showed the flows at 2-4 times the link's rate for a moment).
            self.pipeline.sample_far_ends(SAMPLE_EVERY)
        else:
            self.kernel_frames += spell[0]
            self.kernel_bytes += spell[1]

    def report(self, now: float, reports_dropped: int = 0) -> StatsReport:
        """The stats, with the fast path's state and tc's counters (the frames the kernel
        forwarded counted on the link first)."""
        frames, size = self.kernel_frames, self.kernel_bytes
        if self.kernel_forwards and self._redirect is not None:
            try:
                spell = self._redirect.counters()
            except TcRefused:
                spell = self._counted
            self._count_unseen(spell)
            frames, size = frames + spell[0], size + spell[1]
        report = super().report(now, reports_dropped)
        stats = report.stats.model_copy(update={
            "fast_path": self.kernel_forwards, "fast_path_switches": self.fast_path_switches,
            "fast_path_duplicates": self.fast_path_duplicates, "kernel_forwarded": frames,
            "kernel_forwarded_bytes": size,
        })  # fmt: skip
        return StatsReport(stats=stats)

    def _count_unseen(self, spell: tuple[int, int]) -> None:
        """Count on the link what the kernel forwarded this spell (`spell`: tc's counters)
        beyond what was counted before and the sample the worker read."""
        frames = spell[0] - self._counted[0] - self.sampled_frames
        size = spell[1] - self._counted[1] - self.sampled_bytes
        self.pipeline.passed_kernel(max(0, frames), max(0, size))
        self._counted = spell
        self.sampled_frames = self.sampled_bytes = 0

    def _take_back(self) -> None:
        assert self._redirect is not None
        take_every_frame(self.rx)
        self.pipeline.sample_far_ends(1)
        self._discard_waiting()
        kernel_drops(self.rx)  # (frames the socket could not take meanwhile were forwarded)
        try:
            before = self._redirect.counters()
            self.kernel_forwards = False
            frames, size = self._redirect.remove()
        except TcRefused as exc:
            self.kernel_forwards = False
            self._refused(exc)
            return
        self.fast_path_switches += 1
        self._count_unseen(before)  # (from here on the worker counts what it reads)
        # What came between the last look and the redirect's end: forwarded by both.
        self.fast_path_duplicates += max(0, frames - before[0])
        self.kernel_frames += frames
        self.kernel_bytes += size

    def _discard_waiting(self) -> None:
        """Read and drop what waits in the socket: the redirect forwarded every frame of it."""
        batch = self._batch
        for _ in range(DISCARD_BATCHES):
            try:
                count = batch.receive(self.rx, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if count < BATCH:
                return

    def _refused(self, exc: TcRefused) -> None:
        """Said once; the worker forwards itself from then on."""
        self._redirect = None
        self.pipeline.sample_far_ends(1)
        self.note("warning", f"the kernel fast path is refused here ({exc}): "
                  "the engine forwards every frame itself")  # fmt: skip

    def lose_interfaces(self, opened: bool = True) -> None:
        """An interface went away: its redirect with it (the worker forwards once back)."""
        if self.kernel_forwards or self.handing_over_since is not None:
            self.kernel_forwards = False
            self.handing_over_since = None
            self._end_redirect()
        super().lose_interfaces(opened)

    def close(self) -> None:
        """The worker stops: the redirect goes too (nothing forwards a stopped engine's link)."""
        self.kernel_forwards = False
        self.handing_over_since = None
        self._end_redirect()
        super().close()

    def _end_redirect(self) -> None:
        self.pipeline.sample_far_ends(1)
        if self._redirect is not None:
            with contextlib.suppress(TcRefused):
                self._redirect.remove()
            self._fast_clock.quiet_since = None
