"""A subscriber that falls behind in a flood of changes loses stats, never the spec in force:
the newest spec change that did not fit waits beside its full outbox and goes out after what
was queued before it (a TUI ended a flood showing a spec the engine had replaced)."""

from __future__ import annotations

import threading
from multiprocessing import Pipe

from engine.model.spec import Spec
from engine.protocol.messages import SpecChanged, decode, encode
from engine.protocol.subscribers import OUTBOX_SIZE, Subscriber


def change(latency: int) -> bytes:
    spec = Spec.model_validate({"egress": {"latency": latency}})
    return encode(SpecChanged(spec=spec, source="client", at=float(latency)))


def test_the_last_change_reaches_a_reader_that_fell_behind() -> None:
    reader, writer = Pipe()
    gone: list[object] = []
    subscriber = Subscriber.__new__(Subscriber)  # its outbox, without the sender thread yet
    super(Subscriber, subscriber).__init__(None)
    subscriber.conn, subscriber._on_gone = writer, gone.append
    for latency in range(1, OUTBOX_SIZE + 500):  # the outbox fills; the rest do not fit
        subscriber.offer(change(latency), latest_wins=True)
    last = OUTBOX_SIZE + 499
    seen: list[float] = []
    sending = threading.Thread(target=subscriber._send_loop, daemon=True)
    sending.start()  # drains the outbox (and what waits beside it) to the reader
    while not seen or seen[-1] != last:
        assert reader.poll(10), f"nothing more after {seen[-3:]}"
        message = decode(reader.recv_bytes())
        assert isinstance(message, SpecChanged)
        seen.append(message.spec.default_link.egress.latency)
    subscriber.close()
    sending.join(timeout=10)
    assert seen == sorted(seen)  # never an older one after a newer
    assert len(seen) == OUTBOX_SIZE + 1  # what fitted, then the newest
