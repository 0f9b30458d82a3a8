"""The client address a request came from, believing X-Forwarded-For only from trusted proxies.

A proxy appends the address it received the request from to ``X-Forwarded-For``; anything
to its left was written by whoever sent the request and can be forged. So the hops are read
from the right, starting at the TCP peer, and the first one that is not a trusted proxy
(``PORTALFLOW_TRUSTED_PROXIES``) is the client. With no trusted proxy the peer is the client
and the header is ignored.

    >>> client_ip("10.0.0.5", "203.0.113.9, 198.51.100.7", (IPv4Network("10.0.0.0/8"),))
    '198.51.100.7'
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

UNKNOWN_CLIENT = "unknown"


def client_ip(
    peer: str | None,
    forwarded_for: str | None,
    trusted: Sequence[IPv4Network | IPv6Network],
) -> str:
    """The address to count a request against (the peer's, or a trusted proxy's client's)."""
    hops = [peer or UNKNOWN_CLIENT]
    if forwarded_for:
        hops += [hop.strip() for hop in reversed(forwarded_for.split(",")) if hop.strip()]
    client = hops[0]
    for hop in hops:
        client = hop
        if not _is_trusted(hop, trusted):
            return hop
    return client  # every hop is a proxy of ours: the leftmost is all we know


def _is_trusted(hop: str, trusted: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        address = ip_address(hop)
    except ValueError:
        return False  # a garbled hop is never one of our proxies
    return any(address in network for network in trusted)
