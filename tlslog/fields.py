"""Turn the raw text of grammar fields into values: peers, counters, relays, bits.

Shared by every parser path, so the fast path and pyparsing agree by construction on
everything after the match. Peers repeat a lot in real logs, hence the small caches.
"""

from __future__ import annotations

from functools import cache

import pyparsing as pp

from .grammars import common, smtp
from .parse import RuleSet

__all__ = [
    "attempted_peer",
    "commands_succeeded",
    "delivery_failure",
    "ip_version",
    "openssl_reason",
    "split_peer",
    "starttls_counter",
    "tls_feature_verdict",
]

Peer = tuple[str | None, str | None, int | None]

@cache
def _peer_parts() -> RuleSet:
    """``host[addr]:port`` and bare host names (compiled on first use: start-up stays fast)."""
    return RuleSet([
        common.Rule.define(
            "peer_parts",
            pp.Opt(common.HOST("name"))
            + common.lit("[")
            + pp.Opt(common.ADDR("addr"))
            + common.lit("]")
            + pp.Opt(common.lit(":") + common.PORT("port")),
        ),
        common.Rule.define("bare_host", common.BARE_HOST("name")),
    ], select={"peer_parts": ("name", "addr", "port"), "bare_host": ("name",)})


_peer_cache: dict[str, Peer] = {}


def split_peer(text: str | None) -> Peer:
    """``mx.example.net[2001:db8::25]:25`` -> ``("mx.example.net", "2001:db8::25", 25)``.

    ``[192.0.2.7]:51234`` has no name (None); a bare host name has no address. ``none``,
    ``local`` and ``private/dovecot-lmtp`` relays are not peers: all three parts are None.
    """
    if text is None:
        return (None, None, None)
    peer = _peer_cache.get(text)
    if peer is not None:
        return peer
    found = _peer_parts().parse(text)
    if found is None or found[0] == "bare_host":
        peer = (found[1][0], None, None) if found and "." in text else (None, None, None)
    else:
        name, addr, port = found[1]
        peer = (name or None, addr or None, int(port) if port else None)
    if len(_peer_cache) > 100_000:
        _peer_cache.clear()
    _peer_cache[text] = peer
    return peer


def ip_version(addr: str | None) -> int | None:
    """6 for an address with a colon, 4 for dotted digits, None for placeholders like ``ipaddr``."""
    if not addr:
        return None
    if ":" in addr:
        return 6
    if addr.count(".") == 3 and addr.replace(".", "").isdigit():
        return 4
    return None


def starttls_counter(counters: str) -> tuple[int, int] | None:
    """``(successes, attempts)`` of STARTTLS from disconnect counters, None if not listed.

    `` ehlo=2 starttls=1 mail=1 commands=4`` -> ``(1, 1)``; ``starttls=0/1`` -> ``(0, 1)``.
    """
    at = counters.find(" starttls=")
    if at < 0:
        return None
    value = counters[at + 10 :].split(" ", 1)[0]
    ok, slash, total = value.partition("/")
    if not ok.isdigit() or (slash and not total.isdigit()):
        return None  # e.g. a line cut inside the counter
    return int(ok), int(total or ok)


def commands_succeeded(counters: str) -> bool:
    """True if the disconnect counters show at least one successful SMTP command."""
    at = counters.find(" commands=")
    if at < 0:
        return False
    value = counters[at + 10 :].split(" ", 1)[0].partition("/")[0]
    return value.isdigit() and int(value) > 0


_MANDATORY_LEVELS = frozenset({"encrypt", "dane", "dane-only", "fingerprint", "verify", "secure"})


def tls_feature_verdict(feature: str | None, status: str) -> str | None:
    """What Postfix 3.11's ``tls=`` delivery field proves about encryption, if anything.

    ``tls=LEVEL[:DOWNGRADE][/FEATURE...]``, ``!`` marks a policy violation, ``?`` an undecided
    policy. A delivery *sent* under a mandatory level was encrypted; an effective level of
    ``none`` was not. ``may`` says nothing: opportunistic TLS can fall back to plaintext.
    """
    if not feature:
        return None
    level = feature.split("/", 1)[0]
    if level.startswith("!"):
        return None
    level = level.rstrip("?")
    effective = level.rsplit(":", 1)[-1]
    if effective == "none":
        return "plaintext"
    if effective in _MANDATORY_LEVELS and status == "sent":
        return "tls"
    return None


@cache
def _connect_failed() -> RuleSet:
    return RuleSet([smtp.CONNECT_FAILED])



def attempted_peer(reason: str | None) -> str | None:
    """The server a ``relay=none`` delivery tried last, from ``connect to PEER: error``."""
    if not reason or not reason.startswith("connect to "):
        return None
    found = _connect_failed().parse(reason)
    return found[1]["peer"] if found else None


def openssl_reason(error: str) -> str:
    """The reason of an OpenSSL error-queue entry, or the text itself if it is not one.

    ``error:0A0000C1:SSL routines::no shared cipher:../ssl/statem/statem_srvr.c:2226:`` and the
    1.x/Postfix 2.x form ``3682:error:140740BF:SSL routines:SSL23_CLIENT_HELLO:no protocols
    available:s23_clnt.c:381:`` give ``no shared cipher`` and ``no protocols available``.
    """
    at = error.find("error:")
    if at >= 0:
        parts = error[at:].split(":", 5)
        if len(parts) >= 5 and parts[4]:
            return parts[4]
    return error.strip()


def delivery_failure(reason: str) -> str:
    """A deferral reason without the host it names: ``TLS is required, but was not offered by
    host mx[192.0.2.1]`` -> ``TLS is required, but was not offered``, so reasons group well."""
    for cut in (" by host ", " by server "):
        at = reason.find(cut)
        if at > 0:
            return reason[:at]
    return reason
