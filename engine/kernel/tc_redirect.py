"""The kernel's fast path for a transparent direction: tc's `clsact` qdisc on the receiving
interface and, at its ingress, a filter that matches every frame with `mirred egress
redirect` to the other interface, set up and removed over netlink (pyroute2).

The filter is `u32 match u32 0 0`: the kernels this was written on have no `matchall`
classifier (ENOENT for its kind), while u32 is in every distribution's. A packet socket
still sees a frame that this redirects (taps run before tc ingress), so the worker reads
them; it must not send them too (see engine.daemon.worker.fast_path).
"""

from __future__ import annotations

from typing import Any

#: The clsact qdisc's ingress hook (ffff:fff2), where the filter goes.
INGRESS_PARENT = 0xFFFF_FFF2
#: Our filter's priority on that hook: a number of its own, so removing it touches no other.
PRIORITY = 0x4C53
#: tc counts the bytes of a frame from its network header at ingress; the engine counts the
#: Ethernet header too.
ETHERNET_HEADER = 14
ETH_P_ALL = 0x0003


class TcRefused(Exception):
    """The kernel would not set up (or look at) the redirect: the engine forwards itself."""


class KernelRedirect:
    """The redirect from `rx_ifname` to `tx_ifname` in this process's network namespace."""

    def __init__(self, rx_ifname: str, tx_ifname: str) -> None:
        self.rx_ifname = rx_ifname
        self.tx_ifname = tx_ifname
        self._ipr: Any = None

    def _route(self) -> Any:
        if self._ipr is None:
            from pyroute2 import IPRoute

            self._ipr = IPRoute()
        return self._ipr

    def _index(self, ifname: str) -> int:
        found = self._route().link_lookup(ifname=ifname)
        if not found:
            raise TcRefused(f"{ifname}: no such interface")
        return int(found[0])

    def install(self) -> None:
        """The redirect in place (replacing one left by a worker before this one); TcRefused
        with the kernel's reason if it cannot be."""
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            ipr = self._route()
            rx, tx = self._index(self.rx_ifname), self._index(self.tx_ifname)
            try:
                ipr.tc("add", "clsact", rx)
            except NetlinkError as exc:
                if exc.code != 17:  # EEXIST: there already (ours or another user's)
                    raise
            self._delete(rx)
            action = {"kind": "mirred", "direction": "egress", "action": "redirect", "ifindex": tx}
            ipr.tc("add-filter", "u32", rx, parent=INGRESS_PARENT, prio=PRIORITY,
                   protocol=ETH_P_ALL, keys=["0x0/0x0+0"], target=1, action=action)  # fmt: skip
        except (NetlinkError, OSError) as exc:
            raise TcRefused(_reason(exc)) from None

    def remove(self) -> tuple[int, int]:
        """The redirect gone (nothing if it was not there); returns its final counters
        (`counters`), read just before. TcRefused if the kernel refuses."""
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            rx = self._index(self.rx_ifname)
            final = self._counters(rx)
            self._delete(rx)
        except (NetlinkError, OSError) as exc:
            raise TcRefused(_reason(exc)) from None
        return final

    def counters(self) -> tuple[int, int]:
        """Frames and bytes (Ethernet header included) the redirect has forwarded since it was
        installed: the mirred action's own statistics. (0, 0) without one."""
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            return self._counters(self._index(self.rx_ifname))
        except (NetlinkError, OSError) as exc:
            raise TcRefused(_reason(exc)) from None

    def _counters(self, rx: int) -> tuple[int, int]:
        for item in self._route().get_filters(rx, parent=INGRESS_PARENT):
            if item["info"] >> 16 != PRIORITY:
                continue
            options = item.get_attr("TCA_OPTIONS")
            actions = options.get_attr("TCA_U32_ACT") if options is not None else None
            if actions is None:
                continue
            for _name, action in actions["attrs"]:
                stats = action.get_attr("TCA_ACT_STATS")
                basic = stats.get_attr("TCA_STATS_BASIC") if stats is not None else None
                if basic is not None:
                    packets = int(basic["packets"])
                    return packets, int(basic["bytes"]) + ETHERNET_HEADER * packets
        return 0, 0

    def _delete(self, rx: int) -> None:
        """Our filter off the ingress hook, if there (ENOENT and EINVAL: it was not)."""
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            # (pyroute2 builds u32's options for a delete too: a class id it needs, unused)
            self._route().tc("del-filter", "u32", rx, parent=INGRESS_PARENT, prio=PRIORITY,
                             protocol=ETH_P_ALL, target=1)  # fmt: skip
        except NetlinkError as exc:
            if exc.code not in (2, 22):
                raise

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None


def _reason(exc: Exception) -> str:
    """The kernel's word for a refusal, one line."""
    args: tuple[object, ...] = exc.args
    if len(args) >= 2 and isinstance(args[0], int):
        return f"{args[1]} (errno {args[0]})"
    return str(exc) or type(exc).__name__
