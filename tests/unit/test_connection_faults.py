"""Connection faults in virtual time: a `blackhole` drops a connection's packets once its
time or its bytes are up, and only the share `toxicity` of connections; the connection table
is bounded in size and forgets idle connections, counting both."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.core.connections import ConnectionTable, connection_key
from engine.core.delay_line import Released
from engine.core.fates import FateLog
from engine.core.packet import Packet
from engine.core.pipeline import DirectionPipeline
from engine.model.fates import BLACKHOLED, FATE_NAMES
from engine.model.spec import SpecError, loads_spec, parse_spec
from tests.frames_helpers import tcp_frame, udp_frame
from tests.impairment_helpers import binomial_bounds, datagram, link, simulate, steady

L2 = len(datagram()) - 12  # (the vnet header is 12 bytes)


def sent_between(released: list[tuple[float, bytes]], sport: int) -> list[float]:
    """Release times of the frames of the UDP connection from `sport`."""
    return [at for at, frame in released if connection_key(frame) == connection_key(
        datagram(sport=sport))]  # fmt: skip


def test_a_blackhole_after_two_seconds_drops_each_connection_from_its_second_second() -> None:
    lnk = link(blackhole={"after_s": 2})
    early = steady(100, 0.0, 5.0, datagram(sport=40000))
    late = steady(100, 3.0, 6.0, datagram(sport=40001))  # a connection of its own, 3 s on
    released = simulate(lnk, early + late, 7.0)
    first = sent_between(released, 40000)
    second = sent_between(released, 40001)
    assert len(first) == 200 and max(first) < 2.0
    assert len(second) == 200 and min(second) >= 3.0 and max(second) < 5.0
    assert lnk.stats().drops.blackholed == 300 + 100
    assert lnk.stats().connections == 2


def test_a_blackhole_after_bytes_counts_both_directions_and_lets_the_last_one_over() -> None:
    lnk = link(blackhole={"after_bytes": 10 * L2 + 1})
    out = udp_frame(sport=40000, dport=5001, size=L2 - 42)
    back = udp_frame(src="198.18.0.2", dst="198.18.0.1", sport=5001, dport=40000, size=L2 - 42)
    arrivals = [(i / 100, out if i % 2 else back) for i in range(40)]
    released = simulate(lnk, arrivals, 1.0)
    assert len(released) == 11  # 10 frames make 10 * L2, under the limit: the 11th may pass
    assert lnk.stats().drops.blackholed == 29


def test_connections_are_told_apart_by_their_five_tuples_in_ipv4_and_ipv6() -> None:
    v6 = udp_frame(src="2001:2::1", dst="2001:2::2", sport=1, dport=2)
    v6_back = udp_frame(src="2001:2::2", dst="2001:2::1", sport=2, dport=1)
    assert connection_key(v6) == connection_key(v6_back) is not None
    assert connection_key(tcp_frame(sport=1)) != connection_key(udp_frame(sport=1))
    assert connection_key(udp_frame(sport=1)) != connection_key(udp_frame(sport=2))
    lnk = link(blackhole={"after_bytes": 0})  # every packet of every connection
    released = simulate(lnk, [(0.0, v6), (0.1, tcp_frame()), (0.2, udp_frame())], 1.0)
    assert released == [] and lnk.stats().drops.blackholed == 3


@pytest.mark.parametrize("seeded", [False, True])
def test_toxicity_half_takes_half_of_200_connections(seeded: bool) -> None:
    spec: dict[str, Any] = {"blackhole": {"after_s": 0, "toxicity": 0.5}}
    if seeded:
        spec["seed"] = 5
    lnk = link(**spec)
    arrivals = [(i / 1000, datagram(sport=20000 + i)) for i in range(200)]
    released = simulate(lnk, arrivals, 1.0)
    low, high = binomial_bounds(200, 0.5)  # 100 +- 23
    assert low <= lnk.stats().drops.blackholed <= high
    assert len(released) + lnk.stats().drops.blackholed == 200
    again = link(**spec)  # a seeded link takes the same ones on every run
    if seeded:
        assert simulate(again, arrivals, 1.0) == released


def test_the_table_is_bounded_and_forgets_idle_connections_counting_both() -> None:
    table = ConnectionTable(size=3, idle=120.0)
    keys = [connection_key(datagram(sport=port)) for port in range(1, 6)]
    for key in keys[:4]:
        assert key is not None
        table.see(key, 0.0, 100, lambda: True)
    assert len(table) == 3 and table.untracked == 1
    assert keys[0] is not None and keys[4] is not None
    table.see(keys[0], 100.0, 100, lambda: True)  # seen again: not idle
    connection = table.see(keys[4], 200.0, 100, lambda: True)  # the other two are forgotten
    assert connection is not None and len(table) == 2 and table.expired == 2
    assert table.see(keys[0], 200.0, 50, lambda: False) is not None
    assert table.untracked == 1


def test_a_full_table_lets_new_connections_pass_and_counts_them() -> None:
    lnk = link(blackhole={"after_bytes": 0})
    template = datagram(l2=100)
    sport = template.index(b"\x9c\x40\x13\x89")  # 40000 -> 5001
    for i in range(65_536 + 3):  # each a connection of its own port and address
        port, host = 1 + i % 65_000, 1 + i // 65_000
        frame = template[:sport] + port.to_bytes(2, "big") + template[sport + 2 :]
        frame = frame[: sport - 5] + host.to_bytes(1, "big") + frame[sport - 4 :]
        lnk.offer(Packet(frame, i / 1e6, 1, 100))
    out: list[Released] = []
    lnk.advance(1.0, out)
    stats = lnk.stats()
    assert stats.connections == 65_536 and stats.connections_untracked == 3
    assert len(out) == 3 and stats.drops.blackholed == 65_536


def test_a_blackholed_frame_is_told_in_a_capture() -> None:
    lnk = link(blackhole={"after_bytes": 0})
    lnk.fates = FateLog()
    simulate(lnk, [(0.5, datagram())], 1.0)
    (record,), _ = lnk.fates.take()
    assert record.fate == BLACKHOLED and FATE_NAMES[record.fate] == "blackholed"
    assert FATE_NAMES.index("outage") == 9  # old records keep their numbers


@pytest.mark.parametrize(
    ("blackhole", "words"),
    [
        ({}, "give after_bytes or after_s"),
        ({"after_s": 1, "toxicity": 2}, "toxicity"),
        ({"after_s": -1}, "after_s"),
        ({"after_bytes": "lots"}, "after_bytes"),
        ({"after_s": 1, "after": 2}, "after"),
    ],
)
def test_a_bad_blackhole_is_refused_in_one_line_naming_the_field(
    blackhole: dict[str, object], words: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"default_link": {"ingress": {"blackhole": blackhole}}})
    message = str(caught.value)
    assert "\n" not in message and "blackhole" in message and words in message, message


def test_a_direction_totals_its_blackholed_drops_and_connections() -> None:
    """What `linkshaper live`, the HTTP API and the TUI read: the direction's total."""
    spec = loads_spec(json.dumps({"egress": {"blackhole": {"after_bytes": 0}}}))
    egress = DirectionPipeline(spec, "egress", 0.0, seed=1)
    for port in (1, 2, 2):
        assert not egress.forward(udp_frame(sport=port), 0.0)
    total = egress.stats(1.0).total
    assert total.drops.blackholed == 3 and total.connections == 2
