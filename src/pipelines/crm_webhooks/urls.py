"""Which endpoint URLs a webhook may go to: http(s) only, and only public addresses.

A CRM endpoint is a URL an org admin types; without a policy it would let anyone make our
workers call the metadata service or the database next door (server-side request forgery).
Private, loopback, link-local, reserved and multicast addresses are refused unless an
allowed network of ``PORTALFLOW_WEBHOOK_ALLOWED_NETWORKS`` contains them. The check runs at
save time and again at send time on the addresses the host resolves to then; the
connection is made to an address that passed (a DNS answer that changes in between cannot
slip a private address in).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import SplitResult, urlsplit

from portalflow.models import WebhookUrlRefusal

MAX_URL_LENGTH = 2048
SCHEMES = {"http": 80, "https": 443}
Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address
# host, port -> the addresses it resolves to (socket.getaddrinfo by default).
Resolver = Callable[[str, int], Sequence[str]]


@dataclass(frozen=True)
class Refused:
    """A URL the policy refuses: a stable code and what exactly is wrong."""

    code: WebhookUrlRefusal
    detail: str


@dataclass(frozen=True)
class Target:
    """Where one POST goes: the URL's parts and the checked address to connect to."""

    scheme: str
    host: str
    port: int
    path: str  # with the query
    address: str


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_syntax(url: str) -> SplitResult | Refused:
    """The parsed URL, or why its form is refused (no DNS lookup)."""
    if len(url) > MAX_URL_LENGTH:
        return Refused(WebhookUrlRefusal.TOO_LONG, f"the URL is longer than {MAX_URL_LENGTH}")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError as exc:
        return Refused(WebhookUrlRefusal.BAD_PORT, f"the URL's port is not valid: {exc}")
    if parts.scheme.lower() not in SCHEMES:
        shown = parts.scheme or "none"
        return Refused(
            WebhookUrlRefusal.NOT_HTTP, f"the URL's scheme is {shown!r}; use http:// or https://"
        )
    if parts.username is not None or parts.password is not None:
        return Refused(
            WebhookUrlRefusal.CREDENTIALS,
            "the URL carries a user name or password; the signature authenticates the call",
        )
    if not parts.hostname:
        return Refused(WebhookUrlRefusal.NO_HOST, "the URL names no host")
    return parts


def check_address(address: str, allowed: Sequence[Network]) -> Refused | None:
    """None when ``address`` is public or inside an allowed network, else why not."""
    ip: Address = ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in allowed):
        return None
    if ip.is_global and not ip.is_multicast:
        return None
    return Refused(
        WebhookUrlRefusal.PRIVATE_ADDRESS,
        f"{address} is a private, loopback, link-local or reserved address (allow its "
        "network with PORTALFLOW_WEBHOOK_ALLOWED_NETWORKS if the CRM really is there)",
    )


def check(url: str, allowed: Sequence[Network], resolver: Resolver = resolve) -> Target | Refused:
    """Where a POST to ``url`` may go now, or why it may not (resolving the host)."""
    parts = check_syntax(url)
    if isinstance(parts, Refused):
        return parts
    scheme = parts.scheme.lower()
    host = str(parts.hostname)
    port = parts.port or SCHEMES[scheme]
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        return Refused(WebhookUrlRefusal.UNRESOLVABLE, f"cannot resolve {host}: {exc}")
    if not addresses:
        return Refused(WebhookUrlRefusal.UNRESOLVABLE, f"{host} resolves to no address")
    for address in addresses:
        refused = check_address(address, allowed)
        if refused is not None:
            # One refused answer refuses the host: which one a client gets is the resolver's.
            return Refused(refused.code, f"{host} resolves to {refused.detail}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port, path, addresses[0])
