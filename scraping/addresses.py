"""Which URLs the crawl may fetch: http(s) only, and only public addresses.

Image URLs are written by strangers (anyone can post a reddit link; Openverse
indexes third-party sites). Fetched blindly, `file:///home/me/photo.jpg`
would be read from the local disk, and `http://169.254.169.254/...` (cloud
metadata), `http://192.168.1.1/` or `http://localhost:6379/` would be
requested from inside the operator's network, with the answers saved into a
dataset. These pure functions say why such a URL is refused;
UrlGuardMiddleware (middlewares.py) applies them to every request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

ALLOWED_SCHEMES = frozenset({"http", "https"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # a NAT64 gateway forwards to the last 32 bits

# Most specific first, so the reason names the category a person knows.
_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("is_loopback", "loopback"),
    ("is_unspecified", "unspecified"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)


def scheme_refusal(url: str) -> str | None:
    """Why `url` is not an http(s) URL with a host, or None when it is."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return f"scheme {scheme or '(none)'!r} is not http or https"
    if not parts.hostname:
        return "the URL has no host"
    return None


def ip_literal(host: str) -> IPAddress | None:
    """The address when `host` is written as one (`10.0.0.1`, `::1`), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def address_category(address: IPAddress) -> str | None:
    """Why connecting to `address` is refused (`"loopback"`...), None when public.

    An IPv4 address carried inside IPv6 (`::ffff:127.0.0.1`, 6to4, NAT64)
    is judged as the IPv4 address it reaches; `ipaddress` alone calls
    `::ffff:169.254.169.254` private, not link-local, and NAT64 ones global.
    """
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_category(embedded)
    for attribute, name in _CATEGORIES:
        if getattr(address, attribute):
            return name
    if not address.is_global:  # e.g. 100.64.0.0/10, carrier-grade NAT
        return "non-public"
    return None


def address_refusal(host: str, addresses: Iterable[str | IPAddress]) -> str | None:
    """Why `host` may not be contacted, given every address it resolved to, or None."""
    for value in addresses:
        address = value if not isinstance(value, str) else ip_literal(value)
        if address is None:
            return f"{host} resolved to {value!r}, which is not an IP address"
        category = address_category(address)
        if category is None:
            continue
        article = "an" if category[0] in "aeiou" else "a"
        if ip_literal(host) == address:
            return f"{_describe(address)} is {article} {category} address"
        return f"{host} resolves to {_describe(address)}, {article} {category} address"
    return None


def _describe(address: IPAddress) -> str:
    embedded = _embedded_ipv4(address)
    return f"{address} (IPv4 {embedded})" if embedded is not None else str(address)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
