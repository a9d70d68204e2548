"""What all of a worker's links hold together is bounded (engine/core/shared_bound.py): a spec
of many seeded or faulty links once let each link fill its own tables (42 MiB of seeded
identities each), so a worker grew with the number of links."""

from __future__ import annotations

import gc

from engine.core.connections import ConnectionTable
from engine.core.seeded import PacketKeys
from engine.core.shared_bound import SharedBound
from tests.frames_helpers import udp_frame


def test_tables_share_the_bound_and_a_dropped_table_gives_its_share_back() -> None:
    bound = SharedBound(10)
    first, second = ConnectionTable(shared=bound), ConnectionTable(shared=bound)
    for port in range(6):
        assert first.see((4, 17, 1, port, 2, 9), 0.0, 100, lambda: True) is not None
    taken = [second.see((4, 17, 1, port, 2, 9), 0.0, 100, lambda: True) for port in range(6)]
    assert sum(c is not None for c in taken) == 4 and second.untracked == 2
    assert bound.used == 10
    del first
    gc.collect()
    assert bound.used == 4
    assert second.see((4, 17, 1, 99, 2, 9), 0.0, 100, lambda: True) is not None


def test_an_idle_connection_forgotten_gives_its_entry_back() -> None:
    bound = SharedBound(2)
    table = ConnectionTable(idle=1.0, shared=bound)
    table.see((4, 17, 1, 1, 2, 9), 0.0, 100, lambda: False)
    table.see((4, 17, 1, 2, 2, 9), 0.0, 100, lambda: False)
    assert table.see((4, 17, 1, 3, 2, 9), 0.5, 100, lambda: False) is None
    assert table.see((4, 17, 1, 3, 2, 9), 5.0, 100, lambda: False) is not None
    assert bound.used == 1 and table.expired == 2


def test_many_seeded_links_remember_no_more_than_the_bound_together() -> None:
    bound = SharedBound(1000)
    frames = [udp_frame(size=1 + number) for number in range(300)]
    links = [PacketKeys(7, f"flow{i}", identities=bound) for i in range(20)]
    for link in links:
        for frame in frames:
            link.key(frame)
    assert bound.used == 1000
    assert [len(link._seen) for link in links[:5]] == [300, 300, 300, 100, 0]
    # A link that found the bound spent still decides, but remembers nothing: a frame sent
    # again meets its first occurrence's decision again.
    assert links[-1].key(frames[0]) == links[-1].key(frames[0])
    assert links[0].key(frames[0]) != links[0].key(frames[0])  # remembered: a fresh one
