"""TCP connection faults in virtual time (engine/core/tcp_faults.py): `reset` drops the segment
that finds a connection's bytes or time up and sends a RST to each end at the sequence number
that end expects next; `limit_data` closes a connection (FIN, then RST) after so many bytes of
data one way. The frames made are read back with scapy, checksums included."""

from __future__ import annotations

import json
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from engine.core.connections import connection_key
from engine.core.delay_line import Released
from engine.core.fates import FateLog
from engine.core.frames import VNET_HDR_LEN
from engine.core.link import Link
from engine.core.packet import Packet
from engine.core.pipeline import DirectionPipeline
from engine.core.tcp_faults import read_segment, segment_key
from engine.model.fates import FATE_NAMES, FORWARDED, INJECTED, RESET, mark_words
from engine.model.spec import SpecError, loads_spec, parse_spec
from engine.model.spec_patch import patch_spec
from shaper_tui.packet_feed import SeenFrame
from shaper_tui.screens.packets import FATES, fate_of, passes
from tests.frames_helpers import with_vnet
from tests.impairment_helpers import binomial_bounds, link

SERVER_MAC, CLIENT_MAC = "02:00:00:00:00:02", "02:00:00:00:00:01"
SEQ, ACK = 1_000_000, 5_000
MSS = 1000


def segment(seq: int, size: int = MSS, flags: str = "A", sport: int = 80, dport: int = 40000,
            v6: bool = False) -> bytes:  # fmt: skip
    """A segment from the server (port 80) to the client, acknowledging ACK."""
    ip: Any = (
        IPv6(src="2001:2::2", dst="2001:2::1") if v6 else IP(src="198.18.0.2", dst="198.18.0.1")
    )
    tcp = TCP(sport=sport, dport=dport, seq=seq, ack=ACK, flags=flags)
    return with_vnet(Ether(src=SERVER_MAC, dst=CLIENT_MAC) / ip / tcp / (b"d" * size))


def offer(lnk: Link, frame: bytes, at: float) -> None:
    lnk.offer(Packet(frame, at, 1, len(frame) - VNET_HDR_LEN))


def released(lnk: Link, until: float = 10.0) -> list[bytes]:
    out: list[Released] = []
    lnk.advance(until, out)
    return [bytes(frame) for _, _, frame in out if isinstance(frame, bytes)]


def read(frame: bytes) -> Any:
    """The frame as scapy reads it, after checking that its checksums are right (scapy
    computes them again for a copy with them deleted)."""
    packet = Ether(frame[VNET_HDR_LEN:])
    again = packet.copy()
    del again[TCP].chksum
    if IP in again:
        del again[IP].chksum
    rebuilt = Ether(bytes(again))
    assert rebuilt[TCP].chksum == packet[TCP].chksum
    if IP in packet:
        assert rebuilt[IP].chksum == packet[IP].chksum
    return packet


@pytest.mark.parametrize("v6", [False, True])
def test_a_reset_after_bytes_drops_the_segment_and_resets_both_ends_at_their_sequence(
    v6: bool,
) -> None:
    lnk = link(reset={"after_bytes": 5 * MSS})
    for n in range(10):
        offer(lnk, segment(SEQ + n * MSS, v6=v6), n * 0.001)
    out = released(lnk)
    data = [f for f in out if len(f) > 100]
    (rst,) = [f for f in out if len(f) < 100]
    assert len(data) == 5  # the frames before 5 * MSS bytes (each a little more than MSS)
    assert out[-1] == rst  # after the data: in the dropped segment's place
    forward = read(rst)
    assert forward[TCP].flags == "RA" and forward[TCP].seq == SEQ + 5 * MSS
    assert (forward[TCP].sport, forward[TCP].dport) == (80, 40000)
    assert len(lnk.back) == 5  # the trigger's, then one for each later segment
    reply = read(lnk.back[0])
    assert reply[TCP].flags == "RA" and reply[TCP].seq == ACK
    assert (reply[TCP].sport, reply[TCP].dport) == (40000, 80)
    assert (reply.src, reply.dst) == (CLIENT_MAC, SERVER_MAC)
    assert reply[IPv6 if v6 else IP].src == ("2001:2::1" if v6 else "198.18.0.1")
    stats = lnk.stats()
    # the trigger and the four after it (retransmissions to a closed connection) dropped
    assert stats.drops.reset == 5 and stats.injected == 1 + 5


def test_a_closed_connection_s_later_segments_are_answered_with_a_rst_each() -> None:
    lnk = link(reset={"after_bytes": 0})
    offer(lnk, segment(SEQ), 0.0)
    lnk.back.clear()
    offer(lnk, segment(SEQ), 0.2)  # a retransmission
    (back,) = lnk.back
    assert read(back)[TCP].seq == ACK and lnk.stats().drops.reset == 2


def test_a_new_syn_on_a_reset_5_tuple_starts_a_new_connection() -> None:
    lnk = link(reset={"after_s": 1})
    offer(lnk, segment(SEQ, 0, "S"), 0.0)
    offer(lnk, segment(SEQ + 1), 1.5)  # reset
    offer(lnk, segment(SEQ, 0, "S"), 2.0)  # the port used again: 1 s from now
    offer(lnk, segment(SEQ + 1), 2.5)
    assert lnk.stats().drops.reset == 1


def test_a_reset_after_seconds_fires_at_the_first_segment_past_them() -> None:
    lnk = link(reset={"after_s": 2})
    for n in range(30):
        offer(lnk, segment(SEQ + n * MSS), n * 0.1)
    out = released(lnk)
    assert sum(len(f) > 100 for f in out) == 20  # 0.0 .. 1.9 s
    assert lnk.stats().drops.reset == 10


def test_a_syn_reset_at_once_gets_the_ack_its_sender_checks() -> None:
    lnk = link(reset={"after_bytes": 0})
    offer(lnk, segment(SEQ, 0, "S", sport=40000, dport=80), 0.0)
    (back,) = lnk.back
    reply = read(back)
    assert reply[TCP].flags == "RA" and reply[TCP].seq == 0 and reply[TCP].ack == SEQ + 1


def test_rsts_and_other_connections_pass() -> None:
    lnk = link(reset={"after_bytes": 0, "toxicity": 0})
    offer(lnk, segment(SEQ), 0.0)
    assert len(released(lnk)) == 1 and not lnk.back
    lnk = link(reset={"after_bytes": 0})
    offer(lnk, segment(SEQ, 0, "R"), 0.0)
    assert len(released(lnk)) == 1 and not lnk.back


def test_limit_data_closes_with_fin_then_rst_both_ways_after_the_bytes() -> None:
    lnk = link(limit_data={"after_bytes": 3 * MSS})
    for n in range(6):
        offer(lnk, segment(SEQ + n * MSS), n * 0.001)
    offer(lnk, segment(SEQ + 6 * MSS, 0), 0.01)  # no data: (the connection is closed)
    out = released(lnk)
    assert [len(f) > 100 for f in out] == [True] * 3 + [False] * 2
    fin, rst = (read(f) for f in out[3:])
    assert fin[TCP].flags == "FA" and fin[TCP].seq == SEQ + 3 * MSS
    assert rst[TCP].flags == "RA" and rst[TCP].seq == SEQ + 3 * MSS + 1
    back_fin, back_rst = (read(f) for f in lnk.back[:2])
    assert back_fin[TCP].flags == "FA" and back_fin[TCP].seq == ACK
    assert back_fin[TCP].ack == SEQ + 3 * MSS  # what came before: not the dropped data
    assert back_rst[TCP].flags == "RA" and back_rst[TCP].seq == ACK + 1


def test_limit_data_counts_data_one_way_and_lets_pure_acks_pass() -> None:
    lnk = link(limit_data={"after_bytes": 2 * MSS})
    for n in range(5):  # acknowledgements the other way: no data
        offer(lnk, segment(ACK, 0, sport=40000, dport=80), n * 0.001)
    for n in range(2):
        offer(lnk, segment(SEQ + n * MSS), 0.01 + n * 0.001)
    assert len(released(lnk)) == 7 and lnk.stats().drops.reset == 0


def test_a_toxicity_of_half_resets_half_of_200_connections() -> None:
    lnk = link(reset={"after_bytes": 0, "toxicity": 0.5})
    for port in range(200):
        offer(lnk, segment(SEQ, dport=30000 + port), port * 0.001)
    low, high = binomial_bounds(200, 0.5)
    assert low <= lnk.stats().drops.reset <= high
    assert lnk.stats().connections == 200


def test_a_seeded_toxicity_picks_the_same_connections_every_run() -> None:
    def reset_ports() -> list[int]:
        lnk = link(seed=9, reset={"after_bytes": 0, "toxicity": 0.5})
        picked = []
        for port in range(100):
            before = lnk.stats().drops.reset
            offer(lnk, segment(SEQ, dport=30000 + port), port * 0.001)
            if lnk.stats().drops.reset > before:
                picked.append(port)
        return picked

    first = reset_ports()
    assert 20 < len(first) < 80 and reset_ports() == first


def test_a_reset_is_told_in_a_capture_with_the_rsts_it_made() -> None:
    lnk = link(reset={"after_bytes": 0})
    lnk.fates = FateLog()
    offer(lnk, segment(SEQ), 0.5)
    released(lnk)
    records, _ = lnk.fates.take()
    fates = sorted((FATE_NAMES[r.fate], tuple(mark_words(r.marks))) for r in records)
    assert fates == [("forwarded", ("injected",)), ("forwarded", ("injected",)), ("reset", ())]
    assert {r.fate for r in records} == {RESET, FORWARDED}
    assert all(r.marks in (0, INJECTED) for r in records)


def test_a_direction_collects_what_goes_back_and_totals_its_resets() -> None:
    spec = loads_spec(json.dumps({"ingress": {"reset": {"after_bytes": 0}}}))
    ingress = DirectionPipeline(spec, "ingress", 0.0, seed=1)
    assert not ingress.forward(segment(SEQ), 0.0)
    assert len(ingress.back) == 1 and read(ingress.back[0])[TCP].flags == "RA"
    total = ingress.stats(1.0).total
    assert total.drops.reset == 1 and total.injected == 2


def test_a_change_of_settings_keeps_a_reset_connection_closed() -> None:
    lnk = link(reset={"after_bytes": 0})
    offer(lnk, segment(SEQ), 0.0)
    spec = lnk.spec.model_copy(update={"reset": lnk.spec.reset.model_copy(  # type: ignore[union-attr]
        update={"after_bytes": 10**9})})  # fmt: skip
    lnk.configure(spec, 0.1)
    offer(lnk, segment(SEQ), 0.2)
    assert lnk.stats().drops.reset == 2


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("reset", {}, "give after_bytes or after_s"),
        ("reset", {"after_s": 1, "toxicity": 2}, "toxicity"),
        ("reset", {"after_bytes": -1}, "after_bytes"),
        ("reset", {"after_s": 1, "when": 2}, "when"),
        ("limit_data", {}, "after_bytes"),
        ("limit_data", {"after_bytes": "lots"}, "after_bytes"),
        ("limit_data", {"after_bytes": 1, "toxicity": -0.5}, "toxicity"),
    ],
)
def test_a_bad_tcp_fault_is_refused_in_one_line_naming_the_field(
    field: str, value: dict[str, object], words: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"default_link": {"ingress": {field: value}}})
    message = str(caught.value)
    assert "\n" not in message and field in message and words in message, message


def test_the_faults_are_set_and_cleared_by_field_path_as_linkshaper_set_does() -> None:
    spec = patch_spec(parse_spec({}), {"ingress.reset.after_s": 2.5, "egress.limit_data":
                                       {"after_bytes": 1000, "toxicity": 0.25}})  # fmt: skip
    reset, limit = spec.default_link.ingress.reset, spec.default_link.egress.limit_data
    assert reset is not None and reset.after_s == 2.5 and reset.toxicity == 1.0
    assert limit is not None and limit.after_bytes == 1000 and limit.toxicity == 0.25
    assert not spec.default_link.ingress.transparent
    cleared = patch_spec(spec, {"ingress.reset": None, "egress.limit_data": None})
    assert cleared.default_link.ingress.transparent and cleared.default_link.egress.transparent


def test_the_packets_view_tells_a_reset_and_the_frames_the_engine_made() -> None:
    lnk = link(reset={"after_bytes": 0})
    lnk.fates = FateLog()
    offer(lnk, segment(SEQ), 0.5)
    released(lnk, 0.5)
    records, _ = lnk.fates.take()
    told = sorted(
        fate_of(SeenFrame("ingress", record, n)).plain for n, record in enumerate(records)
    )
    assert told == ["+0.0 ms injected", "+0.0 ms injected", "reset"]
    assert passes(SeenFrame("ingress", records[0], 0), "both", "reset")
    assert "reset" in FATES and "injected" in FATES


@pytest.mark.parametrize("v6", [False, True])
def test_a_segment_s_connection_is_the_one_the_table_reads_from_the_frame(v6: bool) -> None:
    for frame in (segment(SEQ, v6=v6), segment(ACK, 0, sport=40000, dport=80, v6=v6)):
        read_back = read_segment(frame)
        assert read_back is not None and segment_key(read_back)[0] == connection_key(frame)


def test_a_flood_to_a_closed_connection_is_answered_at_most_100_a_second() -> None:
    """The attacker pass made a closed connection's later segments reflect 232,673 RSTs in
    10 s: each is still dropped, but answered at most CLOSED_REPLIES_PER_S a second."""
    lnk = link(reset={"after_bytes": 0})
    offer(lnk, segment(SEQ), 0.0)
    lnk.back.clear()
    for n in range(2000):  # 2000 segments in 1 s
        offer(lnk, segment(SEQ), 0.001 + n * 0.0005)
    assert 100 <= len(lnk.back) <= 100 + 100 + 1, len(lnk.back)  # the burst, and 1 s of refill
    assert lnk.stats().drops.reset == 2001
    lnk.back.clear()
    offer(lnk, segment(SEQ), 5.0)  # after a quiet while, answered again
    assert len(lnk.back) == 1


def test_nothing_is_sent_back_to_a_group_ethernet_address() -> None:
    """A segment from ff:ff:ff:ff:ff:ff (no station sends from one) had its RSTs sent to
    every station of the segment; now only its receiver gets one."""
    lnk = link(reset={"after_bytes": 0})
    frame = segment(SEQ)
    spoofed = frame[: VNET_HDR_LEN + 6] + b"\xff" * 6 + frame[VNET_HDR_LEN + 12 :]
    offer(lnk, spoofed, 0.0)
    assert lnk.back == []
    (rst,) = released(lnk)
    assert read(rst)[TCP].flags == "RA"
