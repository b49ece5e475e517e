"""Where a webhook may go: the URL checked when a job names it, and its host resolved and
checked again when a delivery is sent.

A user must not be able to point the server at its own network (a metadata service, Redis,
an admin page). So: https only (plain http only to hosts the operator lists in
TEXTGEN_WEBHOOK_ALLOW_HOSTS), no user:password in the URL (it would be sent, shown in job
records and end up in logs), and at delivery every address the host resolves to must be a
global one, unless the operator listed that host. The sender then connects to the address
checked here, never to a second lookup that a short-lived DNS answer could point elsewhere
(DNS rebinding).
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.contracts.errors import ValidationError


class RefusedDestinationError(Exception):
    """Raised when a delivery's host resolves to an address the server must not call."""


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to one of `addresses`, speak to `host` (the Host
    header, the TLS name)."""
    scheme: str
    host: str  # as in the URL, without brackets
    port: int
    addresses: tuple  # the IP addresses that were checked, in the resolver's order

    def label(self):
        """host:port, for logs: never the URL's path or query, which may carry a secret."""
        return f"{self.host}:{self.port}"


def _listed(parts, allow_hosts):
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 address is listed as [::1]:port
    return (host in allow_hosts or netloc in allow_hosts
            or f"{netloc}:{parts.port or _default_port(parts)}" in allow_hosts)


def _default_port(parts):
    return 443 if parts.scheme == "https" else 80


def _ip(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _global(address):
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # a scoped IPv6 is link-local
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, whatever the prefix says
    # is_global leaves multicast (224/4, ff00::/8) in; no receiver lives there.
    return ip.is_global and not ip.is_multicast


def check_webhook_url(url, allow_hosts):
    """Refuse a URL the server must not call (ValidationError on field `webhook`).

    Only what can be told without a DNS lookup: the name's addresses are checked when a
    delivery is sent (resolve), as they may change between now and then.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError as e:
        raise ValidationError(f"'webhook' is not a valid URL ({e})", field="webhook") from e
    if parts.username is not None or parts.password is not None:
        raise ValidationError("'webhook' may not carry a user name or password: sign-in "
                              "details in a URL end up in logs; check the webhook-signature "
                              "header instead", field="webhook")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError("'webhook' must be an https URL", field="webhook")
    listed = _listed(parts, allow_hosts)
    if parts.scheme == "http" and not listed:
        raise ValidationError("'webhook' must be an https URL (http only to hosts listed in "
                              "TEXTGEN_WEBHOOK_ALLOW_HOSTS)", field="webhook")
    ip = _ip(parts.hostname)
    if ip is not None and not listed and not _global(str(ip)):
        raise ValidationError("'webhook' may not point at a loopback, private or other "
                              "non-public address", field="webhook")
    return url


def resolve(url, allow_hosts):
    """The Target to send `url` to; RefusedDestinationError when its host resolves to a
    non-global address and is not listed, or does not resolve."""
    try:
        check_webhook_url(url, allow_hosts)  # a URL stored before a rule was added meets it
    except ValidationError as e:
        raise RefusedDestinationError(e.message) from e
    parts = urlsplit(url)
    port = parts.port or _default_port(parts)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise RefusedDestinationError(f"{parts.hostname} does not resolve ({e})") from e
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not _listed(parts, allow_hosts):
        # Every address, not only the first: a name with one public and one private
        # address would otherwise reach the private one on some attempt.
        refused = [a for a in addresses if not _global(a)]
        if refused:
            raise RefusedDestinationError(
                f"{parts.hostname} resolves to {', '.join(refused)}, not a public address "
                "(an operator may list the host in TEXTGEN_WEBHOOK_ALLOW_HOSTS)")
    return Target(parts.scheme, parts.hostname, port, tuple(addresses))
