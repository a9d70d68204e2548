"""The connection table's keys and order, pinned down so that making them cheaper (the bench
`bench.fault_cost`) cannot change what they mean: a key read in one struct call for the common
frame is the key `flow_key` gives for every frame, and the table forgets the least recently
seen connections first, counts them, and refuses a new one when full of live ones."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from engine.core.connections import ConnectionKey, ConnectionTable, connection_key
from engine.core.frames import PLAIN_VNET_HDR, PROTO_TCP, PROTO_UDP, flow_key
from tests.frames_helpers import malformed_frames, tcp_frame, udp_frame


def key_through_flow_key(frame: bytes) -> ConnectionKey | None:
    """The key as it was first defined: `flow_key`'s fields, the lower end first."""
    version, src, dst, protocol, sport, dport = flow_key(frame)
    if protocol not in (PROTO_TCP, PROTO_UDP) or version == 0 or sport == dport == 0:
        return None
    if (src, sport) <= (dst, dport):
        return version, protocol, src, sport, dst, dport
    return version, protocol, dst, dport, src, sport


def crafted() -> list[bytes]:
    """Frames at each edge of the one-call read: ends in either order, equal addresses, IP
    options, fragments, a VLAN tag, IPv6, other protocols, ports of 0."""
    frames = [
        udp_frame(), udp_frame(src="198.18.0.2", dst="198.18.0.1", sport=5001, dport=40000),
        tcp_frame(), tcp_frame(src="198.18.0.9", dst="198.18.0.1", sport=1, dport=65535),
        udp_frame(src="198.18.0.1", dst="198.18.0.1", sport=7, dport=6),
        udp_frame(src="198.18.0.1", dst="198.18.0.1", sport=6, dport=7),
        udp_frame(sport=0, dport=0), udp_frame(sport=0, dport=1),
        udp_frame(src="2001:2::2", dst="2001:2::1", sport=1, dport=2),
    ]  # fmt: skip
    for packet in (
        IP(src="198.18.0.1", dst="198.18.0.2", options=b"\x01\x01\x01\x01") / UDP(sport=9),
        IP(src="198.18.0.1", dst="198.18.0.2", flags="MF") / UDP(sport=9, dport=10),
        IP(src="198.18.0.1", dst="198.18.0.2", frag=185) / UDP(sport=9, dport=10),
        IP(src="198.18.0.1", dst="198.18.0.2", proto=1) / (b"\x08\x00" + bytes(30)),
        IPv6(src="2001:2::9", dst="2001:2::1") / TCP(sport=443, dport=50000),
    ):
        frames.append(PLAIN_VNET_HDR + bytes(Ether() / packet))
    tagged = Ether() / Dot1Q(vlan=5) / IP(src="198.18.0.3", dst="198.18.0.2") / UDP(sport=3)
    frames.append(PLAIN_VNET_HDR + bytes(tagged))
    # Each cut short at every length: a frame too short for its ports has none.
    return frames + [frame[:size] for frame in frames[:4] for size in range(len(frame))]


def test_connection_keys_are_those_flow_key_gives_for_every_frame() -> None:
    frames = crafted() + [PLAIN_VNET_HDR + f for f in malformed_frames(36, 3000)]
    keyed = 0
    for frame in frames:
        expected = key_through_flow_key(frame)
        assert connection_key(frame) == expected, frame.hex()
        keyed += expected is not None
    assert keyed > 500  # (the fuzzed frames are not all refused: the keys were compared)


def test_the_table_forgets_the_least_recently_seen_first_and_refuses_when_full() -> None:
    table = ConnectionTable(size=3, idle=10.0)
    keys: list[ConnectionKey] = [(4, PROTO_UDP, 1, port, 2, 5001) for port in range(1, 6)]
    decided: list[ConnectionKey] = []

    def see(key: ConnectionKey, now: float, size: int = 100) -> bool | None:
        def decide() -> bool:  # (called once, when the connection is new)
            decided.append(key)
            return True

        connection = table.see(key, now, size, decide)
        return None if connection is None else connection.toxic

    assert see(keys[0], 0.0) and see(keys[1], 1.0) and see(keys[2], 2.0)
    assert see(keys[0], 5.0)  # seen again: the most recent now, its bytes counted, not decided
    assert see(keys[3], 9.0) is None and table.untracked == 1  # full of live ones
    assert see(keys[3], 11.5)  # keys[1] (last seen 1.0) forgotten; keys[2] (2.0) still live
    assert (table.expired, len(table)) == (1, 3)
    assert see(keys[4], 16.0)  # keys[2] and keys[0] (5.0) forgotten, oldest first
    assert (table.expired, len(table)) == (3, 2)
    connection = table.see(keys[3], 17.0, 40, lambda: True)
    assert connection is not None
    assert (connection.first_seen, connection.last_seen, connection.bytes) == (11.5, 17.0, 140)
    assert see(keys[1], 30.0)  # forgotten before: new again, decided again
    assert decided == [keys[0], keys[1], keys[2], keys[3], keys[4], keys[1]]


def test_the_directions_total_counts_the_connections_of_idle_links_too() -> None:
    """`total.connections` summed only the links with traffic since the last report: after a
    flood it read 0 while the default link tracked 65,536 (both new passes)."""
    import json

    from engine.core.pipeline import DirectionPipeline
    from engine.model.spec import loads_spec

    spec = loads_spec(json.dumps({"egress": {"blackhole": {"after_s": 3600}}}))
    p = DirectionPipeline(spec, "egress", 0.0, seed=7)
    for port in range(3):
        p.forward(udp_frame(sport=40000 + port), 0.001 * port)
    assert p.stats(0.1).total.connections == 3
    assert p.stats(0.2).total.connections == 3  # no traffic since: still tracked
    p.configure(loads_spec("{}"), 0.3)  # the fault off: the table goes
    p.release(0.5)  # (the link it was in drains what it held, and is done)
    p.stats(0.6)
    assert p.stats(0.7).total.connections == 0
