"""Every fate told, in virtual time: a capture's records say which frames a link duplicated,
corrupted (and which bit), reordered or marked CE, as many as the stats count, and the marks
survive packing, the pcapng comments and `linkshaper fates`."""

from __future__ import annotations

import json
from pathlib import Path

from engine.captures.pcapng import CaptureWriter, comment_of, read_capture
from engine.core.ecn import CE, ECT_0, ecn_field
from engine.core.frames import VNET_HDR_LEN
from engine.core.pipeline import DirectionPipeline
from engine.model.fates import (
    CE_MARKED,
    CORRUPTED,
    CORRUPTED_BIT_SHIFT,
    DUPLICATED,
    FORWARDED,
    LOSS,
    REORDERED,
    FateRecord,
    corrupted_bit,
    mark_words,
    pack,
    unpack,
)
from engine.model.fates_summary import summarise
from engine.model.spec import loads_spec
from tests.impairment_helpers import datagram, tag_of, tagged

FRAMES = 2000
LATENCY = 0.010


Captured = tuple[list[FateRecord], DirectionPipeline, dict[int, bytes]]


def captured(link: dict[str, object], template: bytes | None = None,
             snaplen: int = 2000) -> Captured:  # fmt: skip
    """FRAMES tagged frames, one a millisecond, through an egress link with a capture on;
    its records, the pipeline, and each frame as sent by its tag."""
    p = DirectionPipeline(loads_spec(json.dumps({"egress": link})), "egress", 0.0, seed=11)
    p.start_capture(snaplen=snaplen, drops_only=False)
    sent = {}
    for seq in range(FRAMES):
        frame = sent[seq] = tagged(template or datagram(), seq)
        p.forward(frame, seq / 1000)
        p.release(seq / 1000)
    p.release(FRAMES / 1000 + 5.0)
    assert p.fates is not None
    records, lost = p.fates.take()
    assert lost == 0
    return records, p, sent


def marked(records: list[FateRecord], flag: int) -> list[FateRecord]:
    return [r for r in records if r.marks & flag]


def test_each_copy_a_duplication_makes_is_told() -> None:
    records, p, _ = captured({"duplicate": 0.25, "latency": "10ms"})
    copies = marked(records, DUPLICATED)
    stats = p.stats(10.0).total
    assert len(copies) == stats.duplicated > 350  # 25 % of 2000: 500 +- 5 sd of 19
    assert len(records) == FRAMES + len(copies) == stats.packets_out
    originals = {tag_of(r.head) for r in records if not r.marks}
    assert originals == set(range(FRAMES))  # each copy's frame went out once unmarked
    assert all(r.fate == FORWARDED and mark_words(r.marks) == ["duplicated"] for r in copies)


def test_each_corrupted_frame_says_the_bit_that_was_flipped() -> None:
    records, p, sent = captured({"corrupt": 0.1, "latency": "10ms"})
    bad = marked(records, CORRUPTED)
    assert len(bad) == p.stats(10.0).total.corrupted > 130  # 10 %: 200 +- 5 sd of 13
    assert len(records) == FRAMES  # in order (a fixed latency), whatever bit was flipped
    for seq, record in enumerate(records):
        original = sent[seq][VNET_HDR_LEN:]
        differ = [i for i, (a, b) in enumerate(zip(record.head, original, strict=True)) if a != b]
        bit = corrupted_bit(record.marks)
        if bit is None:
            assert differ == []
            continue
        assert differ == [bit // 8]  # that byte, and that bit of it, is what changed
        assert record.head[bit // 8] ^ original[bit // 8] == 1 << bit % 8
        assert mark_words(record.marks) == [
            f"corrupted bit {bit} (byte {bit // 8}, 0x{1 << bit % 8:02x})"
        ]


def test_each_frame_reordering_sent_past_the_latency_is_told() -> None:
    records, p, _ = captured({"reorder": 0.25, "latency": "10ms"})
    ahead = marked(records, REORDERED)
    assert len(ahead) == p.stats(10.0).total.reordered > 350
    assert all(r.delay < LATENCY for r in ahead)  # they skipped it
    assert all(r.delay >= LATENCY for r in records if not r.marks)


def test_each_frame_loss_marked_ce_is_told_and_carries_ce() -> None:
    # With copies: a copy is of the frame as it arrived, never of its original marked CE (on
    # an unlimited link the original is through loss before the copy is made).
    link: dict[str, object] = {"loss": 0.2, "loss_ecn": True, "duplicate": 0.3}
    records, p, _ = captured(link, template=datagram(ecn=ECT_0))
    ce = marked(records, CE_MARKED)
    stats = p.stats(10.0).total
    assert len(ce) == stats.ecn_marked > 300 and stats.drops.loss == 0
    for record in records:
        codepoint = ecn_field(bytes(VNET_HDR_LEN) + record.head)
        assert codepoint == (CE if record.marks & CE_MARKED else ECT_0), record.marks


def test_an_aqm_s_ce_marks_are_told() -> None:
    # 1.5 times what a 1 Mbit/s link takes: CoDel marks (ECN on) instead of dropping.
    link = {"rate": "1mbit", "queue": {"discipline": "codel", "ecn": True}}
    p = DirectionPipeline(loads_spec(json.dumps({"egress": link})), "egress", 0.0, seed=11)
    p.start_capture(snaplen=128, drops_only=False)
    template = datagram(ecn=ECT_0)  # 1000 bytes a frame: 125 a second fill the link
    for seq in range(FRAMES):
        p.forward(tagged(template, seq), seq / 187.5)
        p.release(seq / 187.5)
    p.release(FRAMES / 187.5 + 60.0)
    assert p.fates is not None
    records, _ = p.fates.take()
    ce = marked(records, CE_MARKED)
    stats = p.stats(99.0).total
    assert len(ce) == stats.ecn_marked > 10 and stats.drops.aqm == 0
    assert all(r.fate == FORWARDED for r in ce)


def test_marks_pack_in_4_bytes_only_when_set_and_several_go_together() -> None:
    head = datagram()[VNET_HDR_LEN:][:64]
    several = DUPLICATED | REORDERED | CE_MARKED | CORRUPTED | 1234 << CORRUPTED_BIT_SHIFT
    plain = FateRecord(1.0, FORWARDED, 0.25, 0.0, "default", 100, head)
    told = FateRecord(2.0, LOSS, 0.0, 0.0, "web", 100, head, several)
    alone, _ = pack([plain], 0.0)
    both, labels = pack([plain, told], 0.0)
    assert len(both) == 2 * len(alone) + 4
    assert unpack(both, labels) == [plain, told]
    assert unpack(both[: -len(head) - 2], labels) == [plain]  # a short tail ends the list
    assert mark_words(several) == [
        "duplicated", "corrupted bit 1234 (byte 154, 0x04)", "reordered", "CE-marked"
    ]  # fmt: skip


def test_the_capture_file_tells_the_marks_in_a_second_comment(tmp_path: Path) -> None:
    head = datagram()[VNET_HDR_LEN:][:64]
    path = tmp_path / "marks.pcapng"
    writer = CaptureWriter(str(path))
    records = [
        FateRecord(1.0, FORWARDED, 0.012, 0.001, "default", 100, head),
        FateRecord(1.1, FORWARDED, 0.012, 0.001, "default", 100, head, DUPLICATED),
        FateRecord(1.2, FORWARDED, 0.002, 0.0, "default", 100, head,
                   CORRUPTED | REORDERED | CE_MARKED | 300 << CORRUPTED_BIT_SHIFT),
        FateRecord(1.3, LOSS, 0.0, 0.0, "default", 100, head, DUPLICATED),
    ]  # fmt: skip
    writer.write("egress", records)
    writer.close()
    read = list(read_capture(str(path)))
    assert [r.fate for r in read] == ["forwarded", "forwarded", "forwarded", "loss"]
    assert [r.marks for r in read] == [
        (), ("duplicated",),
        ("corrupted bit 300 (byte 37, 0x10)", "reordered", "CE-marked"), ("duplicated",),
    ]  # fmt: skip
    # The first comment is what it always was: readers of it alone see no change.
    first = [comment_of(FateRecord(r.time, 0, 0.002, 0.0, "default", 100, head)) for r in read]
    assert first[2] == "forwarded after 2.000 ms (queued 0.000 ms), link default"
    (link,) = summarise(read).links
    assert link.fates["forwarded"] == 3 and link.fates["loss"] == 1
    assert link.impaired == {"duplicated": 2, "corrupted": 1, "reordered": 1, "ecn_marked": 1,
                             "held": 0, "injected": 0}  # fmt: skip
