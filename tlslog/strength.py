"""Weak TLS: what a postmaster should fix or stop accepting, judged from the logged protocol
and cipher (OpenSSL names, as Postfix logs them).

A TLS row is weak for each of these reasons (none when nothing was logged to judge by):

``old-protocol``        below TLSv1.2 (TLSv1.1, TLSv1, SSLv3, SSLv2)
``no-forward-secrecy``  a pre-1.3 cipher without an ephemeral key exchange (no ECDHE/DHE/EDH):
                        recorded traffic can be read later with the server's key
``non-aead``            not GCM, CCM or ChaCha20-Poly1305 (CBC with HMAC, or a stream cipher)
``broken-cipher``       RC4, DES or 3DES, EXPORT, NULL, or anonymous (ADH/AECDH: no
                        authentication at all)
``short-key``           fewer than 128 bits of symmetric key

TLS 1.3 suites are all AEAD with forward secrecy. Outbound, trust below Verified/Trusted is
reported apart (``unverified``): opportunistic TLS a man in the middle could strip or intercept.
"""

from __future__ import annotations

import re

__all__ = ["LEGACY_PROTOCOLS", "REASONS", "Weakness", "weaknesses"]

LEGACY_PROTOCOLS = frozenset({"TLSv1.1", "TLSv1", "SSLv3", "SSLv2"})
REASONS = ("old-protocol", "no-forward-secrecy", "non-aead", "broken-cipher", "short-key")
_FORWARD = re.compile(r"(^|[-_])(ECDHE|DHE|EDH|AECDH|ADH|ECDH_anon|DH_anon)([-_]|$)")
_AEAD = re.compile(r"GCM|CCM|CHACHA20[-_]POLY1305|^CHACHA20")
_BROKEN = re.compile(r"RC4|(^|[-_])(DES|3DES|DES[-_]CBC3|DES[-_]CBC|EXP|EXPORT\d*|NULL|ADH|AECDH|anon)([-_]|$)|"
                     r"_anon_|WITH_NULL|_EXPORT")


def weaknesses(protocol: object, cipher: object, bits: object) -> tuple[str, ...]:
    """The reasons a TLS row is weak, in `REASONS` order (empty: strong, or nothing to judge)."""
    found = []
    if isinstance(protocol, str) and protocol in LEGACY_PROTOCOLS:
        found.append("old-protocol")
    tls13 = protocol == "TLSv1.3" or (isinstance(cipher, str) and cipher.startswith("TLS_") and "_WITH_" not in cipher)
    if isinstance(cipher, str) and cipher:
        if not tls13 and not _FORWARD.search(cipher):
            found.append("no-forward-secrecy")
        if not tls13 and not _AEAD.search(cipher):
            found.append("non-aead")
        if _BROKEN.search(cipher):
            found.append("broken-cipher")
    if isinstance(bits, (int, float)) and bits == bits and 0 <= bits < 128:
        found.append("short-key")
    return tuple(found)


class Weakness:
    """`weaknesses` with a cache: a log has few distinct (protocol, cipher, bits)."""

    def __init__(self) -> None:
        self._seen: dict[tuple, tuple[str, ...]] = {}

    def __call__(self, protocol: object, cipher: object, bits: object) -> tuple[str, ...]:
        key = (protocol, cipher, bits)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = weaknesses(protocol, cipher, bits)
        return found
