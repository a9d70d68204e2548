"""A worker's interfaces: both sockets opened from its `Ports` (the interfaces' packet sockets
by name, or sockets given to a test), closed when an interface goes down or away, and opened
afresh once both are up again, while stats and the supervisor's messages are served.
"""

from __future__ import annotations

import select
import time
from multiprocessing.connection import Connection

from engine.daemon.channel import Outbox
from engine.daemon.worker.supervisor_side import (
    IDLE_STATS_INTERVAL,
    STATS_INTERVAL,
    SupervisorSide,
)
from engine.kernel.interface_state import LINK_ERRNOS, LinkWatch, links_problem
from engine.protocol.messages import StatsPace

#: While an interface is down or missing, the worker wakes on every link change (netlink) and
#: also this often, in case an announcement was lost.
LINK_RECHECK = 1.0


class Interfaces(SupervisorSide):
    """Opens, closes, loses and waits for the interfaces."""

    def _init_interfaces(self) -> None:
        """Open both sockets, or wait for the interfaces if one is missing or down."""
        self.interface_state = "up"
        self.interface_problem = ""
        try:
            self.open()
        except OSError as exc:
            if exc.errno not in LINK_ERRNOS:
                raise
            self.lose_interfaces(opened=False)

    def open(self) -> None:
        """Open both sockets from the ports (by name: an interface made again has a new
        index)."""
        self.rx, self.tx = self.ports.open(self.direction, self.rx_ifname, self.tx_ifname)
        self.stamped = False
        self.follow_spec()

    def lose_interfaces(self, opened: bool = True) -> None:
        """An interface went down or away: close both sockets (a deleted interface's socket
        stays dead even once one of the same name is back) until `wait_for_interfaces`."""
        if opened:
            self.close()
        self.interface_state = "missing"
        self.interface_problem = "an interface went away"

    def close(self) -> None:
        if self.interface_state == "up":
            self.rx.close()
            self.tx.close()

    def wait_for_interfaces(self, conn: Connection, outbox: Outbox) -> bool:
        """Sleep until an interface changes (netlink) or LINK_RECHECK passes, then look again;
        stats and the supervisor's messages are served meanwhile. Each change of state is logged
        once. True once both sockets are open again; False when told to stop."""
        names = (self.rx_ifname, self.tx_ifname)
        watch = LinkWatch()
        said = ""
        next_stats = time.monotonic()
        interval = STATS_INTERVAL
        try:
            while True:
                state, problem = links_problem(names)
                if state == "up":
                    try:
                        self.open()
                    except OSError as exc:  # gone again in between
                        if exc.errno not in LINK_ERRNOS:
                            raise
                        state, problem = "missing", f"cannot open {'/'.join(names)}: {exc.strerror}"
                    else:
                        self.interface_state, self.interface_problem = "up", ""
                        self.note("info", f"{names[0]} and {names[1]} are up: forwarding again")
                        return True
                self.interface_state, self.interface_problem = state, problem
                if problem != said:
                    said = problem
                    self.note("warning", f"{problem}: nothing is forwarded until it is up")
                now = time.monotonic()
                if now >= next_stats:
                    try:
                        self.send_report(outbox, now)
                    except OSError:
                        return False
                    next_stats = now + interval
                    interval = min(IDLE_STATS_INTERVAL, interval * 2)
                timeout = min(LINK_RECHECK, max(0.0, next_stats - now))
                watched: list[LinkWatch | Connection] = [watch, conn]
                readable = select.select(watched, [], [], timeout)[0]
                if watch in readable:
                    watch.drain()
                if conn in readable:
                    message = self.receive(conn)
                    if not self.control(message, time.monotonic()):
                        return False
                    self.build_staged(time.monotonic(), float("inf"))  # nothing to forward
                    self.acknowledge(outbox, message)
                    if isinstance(message, StatsPace):
                        interval = self.stats_pace
                        next_stats = time.monotonic()  # at once, as `_loop` does
        finally:
            watch.close()
