"""``NO_PROXY``: which upstream hosts are reached directly although ``HTTPS_PROXY`` is set.

The usual semantics (curl's, Go's and Python's urllib agree on these):

* a comma-separated list (white space around the items is ignored, as is case);
* ``*`` alone: no proxy for any host;
* a domain matches itself and every subdomain, with or without a leading dot
  (``example.com`` and ``.example.com`` both match ``example.com`` and ``q.example.com``,
  never ``badexample.com``);
* ``host:port`` matches that host on that port only;
* an IP address matches that address (IPv6 with or without brackets: ``::1``, ``[::1]:8443``);
* a CIDR block (``10.0.0.0/8``, ``fd00::/8``) matches the IP addresses it holds. Names are
  not resolved: a host given by name matches only name items.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

__all__ = ["NoProxy", "parse_no_proxy"]


@dataclass(frozen=True, slots=True)
class _Item:
    #: A lower-case domain without its leading dot, or an IP network (a single address is a /32 or /128).
    domain: str | None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    #: Only this port matches (None: any).
    port: int | None


def _split_port(item: str) -> tuple[str, int | None]:
    """``host``/``host:port``/``[v6]``/``[v6]:port``/bare ``v6`` -> (host, port)."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if item.count(":") == 1:  # more than one colon: a bare IPv6 address, no port
        host, _, port = item.partition(":")
        return host, int(port) if port.isdigit() else None
    return item, None


def _item(text: str) -> _Item | None:
    host, port = _split_port(text)
    try:
        return _Item(domain=None, network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        pass
    domain = host.lstrip(".").lstrip("*.").rstrip(".")  # "*.example.com" is a common spelling too
    return _Item(domain=domain, network=None, port=port) if domain else None


@dataclass(frozen=True, slots=True)
class NoProxy:
    """A parsed ``NO_PROXY`` list. ``bypasses(host, port)``: whether that host goes direct."""

    everything: bool = False
    items: tuple[_Item, ...] = ()

    def __bool__(self) -> bool:
        return self.everything or bool(self.items)

    def bypasses(self, host: str, port: int | None = None) -> bool:
        """Whether ``host`` (a name or an IP literal, IPv6 with or without brackets) on ``port``
        is reached without the proxy."""
        if self.everything:
            return True
        return _bypasses(self.items, host.strip("[]").rstrip(".").lower(), port)


@functools.lru_cache(maxsize=256)
def _bypasses(items: tuple[_Item, ...], host: str, port: int | None) -> bool:
    # Cached: the same few upstream hosts are asked about on every call.
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for item in items:
        if item.port is not None and item.port != port:
            continue
        if item.network is not None:
            if address is not None and address.version == item.network.version and address in item.network:
                return True
        elif item.domain is not None and (host == item.domain or host.endswith("." + item.domain)):
            return True
    return False


def parse_no_proxy(text: str | None) -> NoProxy:
    """Read a ``NO_PROXY`` value; items that cannot match anything (empty ones) are dropped."""
    raw = [part.strip().lower() for part in (text or "").split(",")]
    if "*" in raw:
        return NoProxy(everything=True)
    return NoProxy(items=tuple(item for item in map(_item, filter(None, raw)) if item is not None))
