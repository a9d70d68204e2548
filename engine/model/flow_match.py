"""Which packets a flow rule takes (the seed's `flow` object): the far end's address, the
protocol and the far end's port. Its own module so that the spec's module holds the LINK."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator, model_validator

from engine.model.addresses import ipv4_prefix
from engine.model.fields import Strict
from engine.model.validation_errors import quoted

_PROTOCOL_NAMES = {"any": 0, "icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "sctp": 132}
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FlowMatch(Strict):
    """Which packets a flow takes: by the far end's address, the protocol and the far end's port.

    Ingress packets are matched on their source, egress packets on their destination, as in the
    seed. `ip` 0 and `protocol` 0 mean any; ports are looked at only for TCP and UDP.
    """

    ip: int | str = 0
    protocol: int | str = 0
    port_min: int = Field(default=0, ge=0, le=65535)
    port_max: int = Field(default=65535, ge=0, le=65535)

    @field_validator("ip")
    @classmethod
    def _check_ip(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if not 0 <= value <= 0xFFFFFFFF:
                raise ValueError("an integer address must fit in 32 bits")
            return value
        if ipv4_prefix(value) is not None:  # the common case, fast (same answer)
            return value
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"not an IP address or CIDR prefix: {quoted(value)}") from None
        return value

    @field_validator("protocol")
    @classmethod
    def _check_protocol(cls, value: int | str) -> int | str:
        if isinstance(value, str):
            if value.lower() not in _PROTOCOL_NAMES:
                raise ValueError(
                    f"unknown protocol {quoted(value)} (use a number or tcp, udp, icmp)"
                )
            return value
        if not 0 <= value <= 255:
            raise ValueError("protocol is an 8-bit number")
        return value

    @model_validator(mode="after")
    def _check_ports(self) -> FlowMatch:
        if self.port_min > self.port_max:
            raise ValueError("port_min is above port_max")
        return self

    @property
    def network(self) -> IPNetwork | None:
        """The prefix to match, or None for any address. The seed's integer is the address's
        four bytes in network order read as a little-endian number: 192.168.0.1 is 0x0100A8C0."""
        if isinstance(self.ip, int):
            if self.ip == 0:
                return None
            return ipaddress.IPv4Network(self.ip.to_bytes(4, "little"))
        return ipaddress.ip_network(self.ip, strict=False)

    def address_match(self) -> tuple[int, int, int]:
        """(IP version or 0 for any address, network as a number, mask) of `network`, read
        fast for plain IPv4 (a spec of thousands of flows is compiled at every change)."""
        fast = ipv4_prefix(self.ip) if isinstance(self.ip, str) else None
        if fast is not None:
            base, prefix = fast
            return 4, base, (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
        network = self.network
        if network is None:
            return 0, 0, 0
        bits = network.max_prefixlen
        mask = ((1 << bits) - 1) ^ ((1 << (bits - network.prefixlen)) - 1)
        return network.version, int(network.network_address), mask

    @property
    def protocol_number(self) -> int:
        if isinstance(self.protocol, str):
            return _PROTOCOL_NAMES[self.protocol.lower()]
        return self.protocol
