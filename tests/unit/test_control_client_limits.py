"""The control client against engines that stall or lie: a socket that accepts and never
answers, a server holding the key that replies garbage or too much, a key file another user
owns. Each fake engine is a real socket in this process (a thread) or a real `linkshaper`
command run against it; every wait is bounded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, Listener
from pathlib import Path

import pytest

from engine.model.spec import PASS_THROUGH
from engine.model.stats import DirectionStats, EngineStats, LinkStats
from engine.protocol.client import MAX_REPLY, ControlClient
from engine.protocol.control import ControlError, read_authkey
from engine.protocol.messages import SpecReply, StatsReply, encode

LINKSHAPER = str(Path(sys.executable).parent / "linkshaper")
KEY = bytes(range(32))


@pytest.fixture
def control() -> Iterator[str]:
    """A socket path with a key beside it, mode 0600, as an engine writes them."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "control.sock")
        key = os.path.join(folder, "control.key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, KEY.hex().encode() + b"\n")
        os.close(fd)
        yield path


def silent_socket(path: str) -> socket.socket:
    """Accepts (the kernel's backlog does) and never says a word."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    return server


def keyed_server(path: str, answer: Callable[[Connection], None]) -> Listener:
    """A server that holds the key and does the handshake, then `answer`s the connection."""
    listener = Listener(path, "AF_UNIX", authkey=KEY)

    def serve() -> None:
        try:
            conn = listener.accept()
        except OSError:
            return
        try:
            conn.recv_bytes()
            answer(conn)
            time.sleep(30)
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_a_socket_that_never_answers_times_out(control: str) -> None:
    server = silent_socket(control)
    start = time.monotonic()
    try:
        with pytest.raises(ControlError) as caught:
            ControlClient(control, timeout=1.0)
    finally:
        server.close()
    assert str(caught.value) == f"no answer from the engine at {control} within 1 s"
    assert time.monotonic() - start < 5


def test_get_against_a_stalled_socket_says_so_in_one_line(control: str) -> None:
    """The real command, its default deadline (10 s): before, it hung forever."""
    server = silent_socket(control)
    try:
        done = subprocess.run([LINKSHAPER, "get", "--control", control], capture_output=True,
                              text=True, timeout=40)  # fmt: skip
    finally:
        server.close()
    assert done.returncode != 0
    assert f"no answer from the engine at {control} within 10 s" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_a_reply_that_never_comes_times_out(control: str) -> None:
    listener = keyed_server(control, lambda conn: None)
    try:
        with ControlClient(control, timeout=1.0) as client:
            start = time.monotonic()
            with pytest.raises(ControlError, match=r"no answer from the engine at .* within 1 s"):
                client.get_spec()
            assert time.monotonic() - start < 5
    finally:
        listener.close()


def test_a_reply_that_is_not_a_message_is_one_line(control: str) -> None:
    listener = keyed_server(control, lambda conn: conn.send_bytes(b"\xff\x1b[2J not json"))
    try:
        with ControlClient(control, timeout=5.0) as client, pytest.raises(ControlError) as caught:
            client.get_spec()
    finally:
        listener.close()
    assert str(caught.value).startswith(
        f"the engine at {control} answered something that is not a linkshaper message: "
    )
    assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_reply_larger_than_the_limit_is_refused_unread(control: str) -> None:
    listener = keyed_server(control, lambda conn: conn.send_bytes(b" " * (MAX_REPLY + 1)))
    try:
        with (
            ControlClient(control, timeout=10.0) as client,
            pytest.raises(ControlError, match="answered more than 64 MiB"),
        ):
            client.get_spec()
    finally:
        listener.close()


def test_a_silent_stats_subscription_says_so(control: str) -> None:
    """Between stream messages there is no reply deadline, only the silence rule."""
    listener = keyed_server(control, lambda conn: conn.send_bytes(encode(SpecReply(
        spec=PASS_THROUGH))))  # fmt: skip
    try:
        with ControlClient(control, timeout=0.5) as client:
            start = time.monotonic()
            with pytest.raises(ControlError, match=r"no stats from the engine at .* for 1\.5 s"):
                list(client.subscribe(silence=1.5))
            assert 1.4 < time.monotonic() - start < 6
    finally:
        listener.close()


def test_a_10000_flow_stats_reply_fits_the_limit() -> None:
    """The limit's size, measured: the largest stats reply an engine sends fits it."""
    flows = {f"flow-{n:05d}": LinkStats(packets_in=10**9, bytes_in=10**12) for n in range(10000)}
    both = {
        way: DirectionStats(direction=way, at=1.0, flows=flows) for way in ("ingress", "egress")
    }
    size = len(encode(StatsReply(stats=EngineStats(**both))))
    assert size < MAX_REPLY / 4, size


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_key_owned_by_another_user_is_refused(control: str) -> None:
    key = Path(control).with_suffix(".key")
    os.chown(key, 65534, 65534)
    with pytest.raises(OSError, match="owned by uid 65534"):
        read_authkey(control)
    with pytest.raises(ControlError) as caught:
        ControlClient(control, timeout=1.0)
    assert str(caught.value) == f"the key {key} is owned by uid 65534: not the engine's"


def test_a_key_open_to_others_is_refused(control: str) -> None:
    key = Path(control).with_suffix(".key")
    key.chmod(0o644)
    with pytest.raises(ControlError, match=f"the key {key} is mode 0644, open to others"):
        ControlClient(control, timeout=1.0)
