"""A worker's outbox never waits and sends whole frames only (no lab: a socket pair). The lab
ones are in tests/lab/test_liveness.py."""

from __future__ import annotations

import time
from multiprocessing import Pipe

from engine.daemon.channel import OUTBOX_BYTES, FrameReader, Outbox
from engine.model.stats import DirectionStats, LinkStats
from engine.protocol.messages import (
    Configured,
    FateRecords,
    StatsReport,
    decode,
)

#: What one `flush` may take while nobody reads (it writes what the pipe takes and returns).
FLUSH_BOUND = 0.05


def test_a_worker_outbox_never_waits_and_sends_whole_frames_only() -> None:
    """Over a real pipe that nobody reads: posting and flushing never waits; a newer stats
    report supersedes the unsent one (its links merged in, counted as dropped); fate records
    beyond OUTBOX_BYTES are dropped and counted as lost; an acknowledgement is never lost (the
    newest stands for the older). Once the supervisor reads, every frame it gets is whole and
    decodes, the last report is the newest, and nothing else was lost uncounted."""
    supervisor_end, worker_end = Pipe()
    outbox, reader = Outbox(worker_end), FrameReader(supervisor_end)
    record = FateRecords(direction="egress", count=1, data="A" * 3000, labels=["default"])
    posted = 0
    try:
        for n in range(1, 2001):
            flows = {f"flow{n % 7}": LinkStats(packets_in=n)}
            stats = DirectionStats(
                direction="egress", at=float(n), flows=flows, flows_changed_only=True
            )
            outbox.post(StatsReport(stats=stats))
            outbox.post(record)
            posted += 1
            outbox.post(Configured(direction="egress", generation=n))
            began = time.monotonic()
            outbox.flush()
            assert time.monotonic() - began < FLUSH_BOUND
        assert outbox.pending and outbox.fates_lost > 0 and outbox.dropped > 0
        messages = []
        deadline = time.monotonic() + 10
        while outbox.pending:
            assert time.monotonic() < deadline
            messages += [decode(frame) for frame in reader.read()]
            outbox.flush()
        messages += [decode(frame) for frame in reader.read()]
    finally:
        outbox.close()
        reader.close()
        supervisor_end.close()
        worker_end.close()
    reports = [m for m in messages if isinstance(m, StatsReport)]
    fates = [m for m in messages if isinstance(m, FateRecords)]
    acks = [m for m in messages if isinstance(m, Configured)]
    assert reports[-1].stats.at == 2000.0
    # The links of every superseded report are in the last one: all seven flows.
    assert set(reports[-1].stats.flows) == {f"flow{n}" for n in range(7)}
    assert len(reports) + outbox.dropped == 2000
    assert len(fates) + outbox.fates_lost == posted
    # What got through is at most what the outbox and the pipe (well under 1 MiB) hold.
    assert len(fates) * len(record.model_dump_json()) < OUTBOX_BYTES + (1 << 20)
    assert acks[-1].generation == 2000
