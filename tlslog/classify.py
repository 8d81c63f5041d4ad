"""What a row is, besides its verdict: its role (MX, submission, outbound) and whether it is mail
on the wire or a hop inside the mail system.

**Hops.** A content filter (amavis, an rspamd proxy, a DKIM signer) passes every message through
loopback twice: ``postfix/smtp`` to 127.0.0.1:10024 and back in through a second smtpd
(``postfix/10025/smtpd``, any name). Counted as mail they would halve the coverage and put
``localhost`` at the top of the plaintext peers. A row is *internal* when its peer is a
loopback address (127.0.0.0/8, ::1) or in a configured network (``--internal CIDR,...``), when
its relay is a local transport (``private/dovecot-lmtp``, ``local``, ``virtual``), or when its
service is configured as internal (``--internal-service NAME``); every other row is
*external*: mail on the wire. ``--internal none`` makes every row external.

**Roles.** Inbound rows are *submission* when the service is one of the stock submission entries
of master.cf (``…/submission/smtpd``, ``…/submissions/smtpd``, ``…/smtps/smtpd``,
``…/msa/smtpd``) or named with ``--submission-service``; the other smtpd services are *mx*
(port 25 and the like). Outbound rows have the role *outbound*.

Plain Python: the rules are applied to each distinct value once (`tlslog.table`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["LOOPBACK", "Classifier", "parse_networks"]

LOOPBACK = ("127.0.0.0/8", "::1/128")
#: The middle component of the stock submission services' names (``postfix/submission/smtpd``).
SUBMISSION_NAMES = frozenset({"submission", "submissions", "smtps", "msa"})
#: Relays that are local transports, not SMTP on the wire.
_LOCAL_RELAYS = ("private/", "public/", "local", "virtual", "lmtp:unix:")


def parse_networks(text: str) -> tuple[str, ...]:
    """``10.0.0.0/8,2001:db8::/32`` -> the networks, checked (ValueError for a bad one)."""
    networks = []
    for item in text.split(","):
        item = item.strip()
        if item:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
    return tuple(networks)


@dataclass(frozen=True)
class Classifier:
    """The rules of roles and hops (see the module docstring); picklable, so workers apply them."""

    #: networks whose peers are internal, beyond loopback
    networks: tuple[str, ...] = ()
    #: services (as logged, e.g. ``postfix/10025/smtpd``) whose rows are all internal
    internal_services: frozenset[str] = frozenset()
    #: services (as logged) that are submission beyond the stock names
    submission_services: frozenset[str] = frozenset()
    #: False: ``--internal none``, every row is external
    hops: bool = True
    _parsed: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parsed", tuple(ipaddress.ip_network(n) for n in (*LOOPBACK, *self.networks)))

    def __getstate__(self) -> tuple:
        return self.networks, self.internal_services, self.submission_services, self.hops

    def __setstate__(self, state: tuple) -> None:
        networks, internal, submission, hops = state
        object.__setattr__(self, "networks", networks)
        object.__setattr__(self, "internal_services", internal)
        object.__setattr__(self, "submission_services", submission)
        object.__setattr__(self, "hops", hops)
        self.__post_init__()

    def role(self, kind: str, service: str) -> str:
        """``mx``, ``submission`` or ``outbound``."""
        if kind == "outbound":
            return "outbound"
        if service in self.submission_services:
            return "submission"
        parts = service.split("/")
        return "submission" if len(parts) >= 3 and parts[-2] in SUBMISSION_NAMES else "mx"

    def internal_peer(self, address: str | None) -> bool:
        """True for a loopback address or one in a configured network."""
        if not self.hops or not address:
            return False
        if not self.networks and not _maybe_loopback(address):
            return False  # the common case, without parsing the address
        return _in_networks(address, self._parsed)

    def internal_relay(self, relay: str | None) -> bool:
        """True for a local transport (``private/dovecot-lmtp``, ``local``)."""
        return self.hops and bool(relay) and relay.startswith(_LOCAL_RELAYS)  # type: ignore[union-attr]

    def internal_service(self, service: str) -> bool:
        return self.hops and service in self.internal_services


def _maybe_loopback(address: str) -> bool:
    """False only for addresses that cannot be loopback (127.0.0.0/8, ::1), whatever their spelling."""
    return address.startswith("127.") or address.split("%", 1)[0].strip("0:") == "1"


@lru_cache(maxsize=65536)
def _in_networks(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0
    except ValueError:
        return False  # placeholders like "ipaddr", "x.x.x.x"
    return any(ip in network for network in networks if network.version == ip.version)
