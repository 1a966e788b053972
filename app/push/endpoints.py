"""Which push endpoints the service will talk to: public push services only (no SSRF).

A push endpoint is a URL the patient's browser hands us, so it is attacker-controlled: without
checks a patient could make the service POST to ``https://169.254.169.254/…`` (cloud metadata)
and read the connection error back, or to ``https://[::1]/x`` and stall the dispatcher. The
rules, checked when a subscription is stored and again just before each send (a host may
resolve elsewhere by then — DNS rebinding):

* ``https`` only, with a host name and no credentials; an IP-literal host is refused;
* every address the host resolves to is public (``ipaddress.is_global``): private, loopback,
  link-local, shared, reserved and documentation ranges are refused;
* with the allow-list on (``push_enforce_allowlist``; on by default outside development) the
  host must be one of ``push_allowed_hosts`` or a subdomain of one (the browsers' push
  services);
* development only: ``http`` or ``https`` on ``127.0.0.1`` or ``localhost`` is accepted
  without resolving, for the local push service of the tests and of a laptop.

Names are resolved through a :class:`Resolver`: DNS in the service, a fixed table when
``push_host_table`` is set (tests, air-gapped demos), so no test needs the network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from app.config import Settings

DEV_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
"""Hosts a development service may push to over http (the local push service)."""


class Resolver(Protocol):
    """Turns a host name into the addresses a connection could go to."""

    def addresses(self, host: str) -> list[str]:
        """Return every address of the host (empty when it does not resolve)."""
        ...


class DnsResolver:
    """The system resolver."""

    def addresses(self, host: str) -> list[str]:
        """Return every address of the host (empty when it does not resolve)."""
        try:
            infos = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return []
        return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class TableResolver:
    """A fixed table of host → addresses; hosts not in it do not resolve."""

    table: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def addresses(self, host: str) -> list[str]:
        """Return the table's addresses of the host."""
        return list(self.table.get(host.lower().rstrip("."), ()))


class CachingResolver:
    """Another resolver's answers, each host asked once (for one batch of pushes)."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver
        self._known: dict[str, list[str]] = {}

    def addresses(self, host: str) -> list[str]:
        """Return every address of the host, as the first answer for it gave."""
        if host not in self._known:
            self._known[host] = self._resolver.addresses(host)
        return list(self._known[host])


def resolver_for(settings: Settings) -> Resolver:
    """The resolver the settings ask for: the fixed table when one is given, else DNS."""
    if settings.push_host_table is not None:
        return TableResolver({k.lower(): v for k, v in settings.push_host_table.items()})
    return DnsResolver()


@dataclass(frozen=True)
class EndpointProblem:
    """Why an endpoint is refused: a stable code and a sentence for the client."""

    code: str
    message: str


def endpoint_problem(
    endpoint: str, settings: Settings, resolver: Resolver
) -> EndpointProblem | None:
    """Return why the service must not push to this endpoint, or None when it may."""
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower().rstrip(".")
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        return EndpointProblem("invalid_url", "The endpoint must be an absolute URL with a host.")
    if not host or not port_ok or parts.username or parts.password:
        return EndpointProblem("invalid_url", "The endpoint must be an absolute URL with a host.")
    loopback = host in DEV_LOOPBACK_HOSTS and parts.scheme in ("http", "https")
    if loopback and settings.is_development:
        return None
    if parts.scheme != "https":
        return EndpointProblem("insecure_endpoint", "Push endpoints must use https.")
    if _is_ip_literal(host):
        return EndpointProblem(
            "address_not_allowed", "A push endpoint needs a host name, not an address."
        )
    if enforce_allowlist(settings) and not _allowed(host, settings.push_allowed_hosts):
        return EndpointProblem(
            "unknown_push_service", "The endpoint is not one of the known push services."
        )
    addresses = resolver.addresses(host)
    if not addresses:
        return EndpointProblem("unresolvable", "The endpoint's host does not resolve.")
    if not all(_is_public(a) for a in addresses):
        return EndpointProblem(
            "address_not_allowed", "The endpoint's host resolves to a non-public address."
        )
    return None


def enforce_allowlist(settings: Settings) -> bool:
    """Whether only the known push services are accepted (default: outside development)."""
    if settings.push_enforce_allowlist is not None:
        return settings.push_enforce_allowlist
    return not settings.is_development


def _allowed(host: str, allowed: Sequence[str]) -> bool:
    return any(host == a or host.endswith("." + a) for a in (x.lower() for x in allowed))


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return ip.is_global and not ip.is_multicast


__all__ = [
    "DEV_LOOPBACK_HOSTS",
    "DnsResolver",
    "EndpointProblem",
    "Resolver",
    "TableResolver",
    "endpoint_problem",
    "enforce_allowlist",
    "resolver_for",
]
