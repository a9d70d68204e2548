"""The IPv4 fast path must accept exactly what `ipaddress` accepts: a spec the gate admits
must not later make `ipaddress` raise (Unicode digits once slipped through `\\d`)."""

from __future__ import annotations

import ipaddress

import pytest

from engine.model.addresses import ipv4_prefix

TRICKY = [
    "1.2.3.4",
    "10.0.0.0/8",
    "\uff11.2.3.4",
    "1.2.3.\u0664",
    "\u0661.\u0662.\u0663.\u0664/\u0663\u0662",
    "1.2.3.4/\u0663\u0662",
    "01.02.03.04",
    "1.2.3",
    "1.2.3.4/33",
    "1.2.3.4/032",
    "1.2.3.4/00",
    " 1.2.3.4",
    "1.2.3.4\n",
    "1.2.3.4 ",
    "256.1.1.1",
    "1.2.3.4/255.255.255.0",
]


def _by_ipaddress(text: str) -> tuple[int, int] | None:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return int(net.network_address), net.prefixlen


@pytest.mark.parametrize("text", TRICKY)
def test_fast_path_agrees_with_ipaddress(text: str) -> None:
    fast = ipv4_prefix(text)
    if fast is not None:
        assert fast == _by_ipaddress(text), f"{text!r}: fast path {fast}"
