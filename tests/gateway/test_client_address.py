"""Who an upload is counted against: the peer, an IPv6 /64, X-Forwarded-For only via trusted
proxies."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.client_address import UNKNOWN_CLIENT, client_key

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::/64"),
        (None, UNKNOWN_CLIENT),
        ("not an address", UNKNOWN_CLIENT),
    ],
)
def test_the_peer_is_the_client(peer: str | None, expected: str) -> None:
    assert client_key(peer, None, PROXIES) == expected


def test_one_ipv6_customer_is_one_client_whatever_its_address() -> None:
    keys = {client_key(f"2001:db8:5:6::{n:x}", None, ()) for n in range(1, 500)}

    assert keys == {"2001:db8:5:6::/64"}


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    assert client_key("203.0.113.7", "198.51.100.1", PROXIES) == "203.0.113.7"


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        ("198.51.100.1", "198.51.100.1"),
        # The client wrote its own first entry; the proxy appended the real one.
        ("1.2.3.4, 198.51.100.1", "198.51.100.1"),
        # Two trusted proxies in a row: skip the inner one.
        ("198.51.100.1, 10.1.1.1", "198.51.100.1"),
        ("2001:db8:9:9::5, fd00::2", "2001:db8:9:9::/64"),
        # A garbled hop: the last address a trusted proxy vouched for.
        ("198.51.100.1, garbage", "10.0.0.2"),
        ("", "10.0.0.2"),
    ],
)
def test_x_forwarded_for_from_a_trusted_proxy_is_read_from_the_right(
    forwarded_for: str, expected: str
) -> None:
    assert client_key("10.0.0.2", forwarded_for, PROXIES) == expected
