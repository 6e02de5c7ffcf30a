"""Who an upload comes from, for the per-client limits: an address, or an IPv6 /64.

A pure function of the connection's peer address, the X-Forwarded-For header and the proxies
the deployment trusts; X-Forwarded-For from anyone else is ignored, so a client cannot pick
its own identity.
"""

from __future__ import annotations

import ipaddress

from gateway.settings import IPNetwork

# One IPv6 customer usually gets a whole /64: counting addresses inside it would let one
# client be 2**64 clients.
IPV6_CLIENT_PREFIX = 64
UNKNOWN_CLIENT = "unknown"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_key(
    peer: str | None, forwarded_for: str | None, trusted_proxies: tuple[IPNetwork, ...]
) -> str:
    """The client as a string key: "203.0.113.7" or "2001:db8:1:2::/64".

    peer is the TCP peer's address. When it is a trusted proxy, X-Forwarded-For is read from
    the right (the entry the proxy appended) past any further trusted proxies, to the first
    address no trusted proxy vouches for. An unparsable peer is UNKNOWN_CLIENT.
    """
    address = _parse(peer)
    if address is None:
        return UNKNOWN_CLIENT
    if _is_trusted(address, trusted_proxies) and forwarded_for:
        for entry in reversed(forwarded_for.split(",")):
            hop = _parse(entry.strip())
            if hop is None:
                break  # a garbled hop: keep the last address a trusted proxy vouched for
            address = hop
            if not _is_trusted(hop, trusted_proxies):
                break
    return _key(address)


def _parse(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone index
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress, trusted_proxies: tuple[IPNetwork, ...]) -> bool:
    return any(address in network for network in trusted_proxies)


def _key(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False)
        return str(network)
    return str(address)
