"""A fast reading of the commonest flow address, a dotted IPv4 address with or without a
prefix length: `ipaddress` spends some 20 µs on each, most of a 10,000-flow spec's
validation. Anything else (IPv6, unusual forms) is left to `ipaddress`, so what is accepted
does not change: this reads only a subset of what `ipaddress.ip_network` accepts.
"""

from __future__ import annotations

import re

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED = re.compile(rf"({_OCTET})\.({_OCTET})\.({_OCTET})\.({_OCTET})(?:/(3[0-2]|[12]?[0-9]))?")


def ipv4_prefix(text: str) -> tuple[int, int] | None:
    """(network as a number, prefix length) of `text` read as `ip_network(text, strict=False)`
    reads it, or None if `text` is not plain dotted IPv4 (then ask `ipaddress`)."""
    found = _DOTTED.fullmatch(text)
    if found is None:
        return None
    a, b, c, d, length = found.groups()
    prefix = 32 if length is None else int(length)
    address = (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
    mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return address & mask, prefix
