"""Fates in virtual time: with a capture running, every frame offered to a direction is
recorded exactly once, with the fate its link gave it and, if forwarded, the delay it got."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from engine.captures.pcapng import CaptureWriter
from engine.cli.main import main
from engine.core.fates import FateLog
from engine.core.pipeline import DirectionPipeline
from engine.model.fates import (
    BLOCKED,
    FATE_NAMES,
    FLUSHED,
    FORWARDED,
    LOSS,
    QUEUE_FULL,
    FateRecord,
    pack,
    unpack,
)
from engine.model.spec import loads_spec
from engine.model.stats import DirectionStats, Drops
from tests.frames_helpers import udp_frame


def pipeline(spec: dict[str, object]) -> DirectionPipeline:
    return DirectionPipeline(loads_spec(json.dumps(spec)), "egress", 0.0, seed=7)


def seq_of(head: bytes) -> int:
    """The datagram number these tests put in the payload's first 4 bytes."""
    return int.from_bytes(head[42:46], "big")


def numbered(seq: int) -> bytes:
    return udp_frame(size=100)[:-100] + seq.to_bytes(4, "big") + b"x" * 96


def test_every_frame_is_recorded_once_with_its_fate_and_delay() -> None:
    p = pipeline({"egress": {"loss": 0.1, "latency": "5ms", "rate": "10mbit",
                             "queue": {"packets": 20}}})  # fmt: skip
    p.start_capture(snaplen=128, drops_only=False)
    released = 0
    for seq in range(2000):  # 2000 a second of 1 kbit frames: 2 Mbit/s, then bursts of 100
        now = seq * 0.0005 if seq < 1000 else 0.5 + (seq - 1000) // 100 * 0.1
        if not p.forward(numbered(seq), now):
            pass
        released += len(p.release(now))
    released += len(p.release(10.0))
    fates = p.fates
    assert fates is not None
    records, lost = fates.take()
    assert lost == 0
    assert sorted(seq_of(r.head) for r in records) == list(range(2000))
    by_fate = Counter(r.fate for r in records)
    stats = p.stats(10.0).total
    assert by_fate[FORWARDED] == stats.packets_out == released
    assert by_fate[LOSS] == stats.drops.loss and by_fate[QUEUE_FULL] == stats.drops.queue_full
    assert by_fate[LOSS] > 100 and by_fate[QUEUE_FULL] > 100
    forwarded = [r for r in records if r.fate == FORWARDED]
    assert min(r.delay for r in forwarded) >= 0.005
    assert all(0 <= r.queued <= r.delay - 0.005 + 1e-9 for r in forwarded)
    assert all(r.delay == 0 for r in records if r.fate != FORWARDED)
    assert {r.label for r in records} == {"default"} and records[0].length == 14 + 20 + 8 + 100


def test_blocked_flushed_drops_only_and_the_bound() -> None:
    p = pipeline({"egress": {"latency": "1s"}})
    p.start_capture(snaplen=64, drops_only=True)
    for seq in range(10):
        p.forward(numbered(seq), 0.0)
    p.flush()
    p.configure(loads_spec('{"egress": {"rate": 0}}'), 0.1)
    p.forward(numbered(10), 0.2)
    assert p.fates is not None
    records, _ = p.fates.take()
    assert [(r.fate, seq_of(r.head)) for r in records] == [
        *((FLUSHED, seq) for seq in range(10)), (BLOCKED, 10)
    ]  # fmt: skip
    assert all(len(r.head) == 64 for r in records)
    log = FateLog(limit=3)
    for seq in range(5):
        log.note(numbered(seq), 0.0, LOSS, "default")
    records, lost = log.take()
    assert len(records) == 3 and lost == 2 and log.take() == ([], 0)


def test_a_capture_turns_the_straight_path_off_and_records_pass_through() -> None:
    p = pipeline({})
    assert p.straight
    p.start_capture(snaplen=128, drops_only=False)
    assert not p.straight
    assert p.forward(numbered(1), 1.0)  # still sent at once
    assert p.fates is not None
    (record,), _ = p.fates.take()
    assert record.fate == FORWARDED and record.delay == 0 and record.arrival == 1.0
    p.stop_capture()
    assert p.straight and p.fates is None


def test_records_survive_packing_and_garbage_ends_the_list() -> None:
    log = FateLog()
    log.note(numbered(3), 2.0, FORWARDED, "web", 0.25, 0.125)
    log.note(numbered(4), 2.5, LOSS, "default")
    records, _ = log.take()
    data, labels = pack(records, offset=100.0)
    back = unpack(data, labels)
    assert [(r.arrival, r.fate, r.delay, r.queued, r.label, r.head) for r in back] == [
        (102.0, FORWARDED, 0.25, 0.125, "web", records[0].head),
        (102.5, LOSS, 0.0, 0.0, "default", records[1].head),
    ]
    assert unpack(data[:-5], labels) == back[:1]
    assert unpack(b"\xff" * 40, labels) == []
    assert len(FATE_NAMES) == 12


def known_capture(path: Path) -> None:
    """egress: 100 frames, 90 forwarded after 10..19 ms, a burst of 4 losses and 6 lone queue
    drops; ingress: one blocked on link web; 7 records lost."""
    writer = CaptureWriter(str(path))
    records = []
    for seq in range(100):
        if 40 <= seq < 44:
            fate = LOSS
        elif seq % 17 == 5:
            fate = QUEUE_FULL
        else:
            fate = FORWARDED
        delay = 0.010 + (seq % 10) / 1000 if fate == FORWARDED else 0.0
        records.append(FateRecord(1000.0 + seq / 100, fate, delay, 0.001, "default", 142,
                                  numbered(seq)[10:74]))  # fmt: skip
    writer.write("egress", records)
    writer.lost_records(7)
    writer.write("ingress", [FateRecord(1001.0, BLOCKED, 0, 0, "web", 142, numbered(0)[10:74])])
    writer.close()


def test_fates_sums_up_a_capture_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`linkshaper fates` on a file written here: the counts, percentiles and loss bursts it
    must give are known."""
    path = tmp_path / "known.pcapng"
    known_capture(path)
    with pytest.raises(SystemExit) as done:
        main(["fates", str(path)])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "egress, link default: 100 frames" in text
    assert "forwarded          90" in text and "loss                4" in text
    assert "queue full          6" in text
    assert "delay ms: min 10.000, p50 15.000, p90 19.000, p99 19.000, max 19.000" in text
    assert "longest loss bursts (frames in a row): 4" in text
    assert "ingress, link web: 1 frames" in text and "blocked             1" in text
    assert "7 records were lost while capturing" in text
    with pytest.raises(SystemExit) as done:
        main(["fates", str(path), "--plot"])
    assert done.value.code == 0
    drawn = capsys.readouterr().out
    assert "delay (ms) over time (s)" in drawn and "drops a second by cause" in drawn


def test_fates_json_is_one_object_with_the_stats_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fates --json`: the same known figures, one JSON object, each fate under the name the
    stats' `drops` give its cause, and the delays named as the stats' `delay_p50_ms`."""
    path = tmp_path / "known.pcapng"
    known_capture(path)
    with pytest.raises(SystemExit) as done:
        main(["fates", str(path), "--json"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    whole = json.loads(out)
    assert whole["records_lost"] == 7
    egress, ingress = whole["links"]  # sorted by direction, then link
    assert (egress["direction"], egress["link"], egress["frames"]) == ("egress", "default", 100)
    assert egress["fates"]["forwarded"] == 90 and egress["fates"]["queue_full"] == 6
    assert egress["fates"]["loss"] == 4 and egress["fates"]["burst_loss"] == 0
    assert set(Drops.model_fields) <= set(egress["fates"])
    assert egress["delay_samples"] == 90 and egress["delay_min_ms"] == pytest.approx(10.0)
    assert egress["delay_p50_ms"] == pytest.approx(15.0) and egress["delay_p99_ms"] == 19.0
    assert egress["queued_p50_ms"] == pytest.approx(1.0) and egress["loss_bursts"] == [4]
    assert {"delay_samples", "delay_p50_ms", "delay_p99_ms"} <= set(DirectionStats.model_fields)
    assert (ingress["link"], ingress["fates"]["blocked"], ingress["delay_samples"]) == ("web", 1, 0)


def test_loss_bursts_are_counted_in_time_order_per_direction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A capture's records are not in time order in the file: each direction's batches come
    as its worker sends them, interleaved with the other's, and a batch may hold frames that
    arrived before the last one's (forwarded frames are noted when they leave). Bursts are
    runs in arrival time within one direction: here each direction's file order would make
    one burst of 4, time order gives 2 and 2 (ingress) and 1, 1, 1, 1 (egress)."""
    frame = udp_frame()
    start = 1_700_000_000.0

    def records(fates: list[tuple[float, int]]) -> list[FateRecord]:
        delay = {FORWARDED: 0.004}
        return [FateRecord(start + t, fate, delay.get(fate, 0.0), 0.0, "default",
                           len(frame) - 10, frame[10:80]) for t, fate in fates]  # fmt: skip

    writer = CaptureWriter(str(tmp_path / "shuffled.pcapng"))
    writer.write("ingress", records([(0.1, LOSS), (0.2, LOSS)]))
    writer.write("egress", records([(0.15, LOSS), (0.35, LOSS), (0.55, LOSS), (0.75, LOSS)]))
    writer.write("ingress", records([(0.5, LOSS), (0.6, LOSS)]))
    writer.write("egress", records([(0.25, FORWARDED), (0.45, FORWARDED), (0.65, FORWARDED)]))
    writer.write("ingress", records([(0.3, FORWARDED), (0.4, FORWARDED)]))
    writer.close()
    with pytest.raises(SystemExit) as done:
        main(["fates", str(tmp_path / "shuffled.pcapng"), "--json"])
    assert done.value.code == 0
    egress, ingress = json.loads(capsys.readouterr().out)["links"]
    assert (egress["direction"], egress["loss_bursts"]) == ("egress", [1, 1, 1, 1])
    assert (ingress["direction"], ingress["loss_bursts"]) == ("ingress", [2, 2])


def test_a_flush_notes_what_the_capture_can_take_in_release_order_and_counts_the_rest() -> None:
    """A flush sorted every held packet (1.3 s for 500,000, and a worker silent for 2 s is
    restarted): only those the capture's buffer can take are taken out in release order;
    the rest are counted as lost records, as the buffer would have counted them."""
    p = pipeline({"egress": {"latency": "1s"}})
    p.start_capture(snaplen=64, drops_only=True)
    assert p.fates is not None
    p.fates.limit = 4
    for seq in range(10):
        p.forward(numbered(seq), seq * 0.001)
    assert p.flush() == 10
    records, lost = p.fates.take()
    assert [(r.fate, seq_of(r.head)) for r in records] == [(FLUSHED, seq) for seq in range(4)]
    assert lost == 6
