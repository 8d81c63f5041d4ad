"""Where every line read went: the ``lines`` part of the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

__all__ = ["LineStats"]


@dataclass
class LineStats:
    """``read == postfix + other + unrecognized``; ``parsed + unparsed`` are the smtp, smtpd and
    tlsproxy lines (postscreen and master lines count as Postfix lines without being parsed);
    ``tls_detail`` are parsed lines of TLS log level 2 and higher (handshake states, alerts,
    certificate and cache details, dumps) that carry no verdict."""

    read: int = 0
    postfix: int = 0
    parsed: int = 0
    unparsed: int = 0
    other: int = 0
    unrecognized: int = 0
    duplicate: int = 0  # the same text as the line before it (a doubled log): not folded again
    invalid_utf8: int = 0
    tls_detail: int = 0

    def add(self, other: LineStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
