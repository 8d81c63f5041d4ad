"""Settle the verdicts that a row's own lines cannot give: per stretch of log, never per input.

Two kinds of row need context (the fold marks them ``pending``):

* **no TLS evidence at all** (``fold_evidence = no-tls-line``): an outbound delivery with no
  TLS line, or a Postfix < 3.0 session whose disconnect has no counters. It is ``plaintext``
  only where that service is shown to be logging TLS lines *there and then*; with
  ``*_tls_loglevel = 0`` a missing line proves nothing, and the row is ``unknown``
  (``no-tls-logging``).
* **counters without** ``starttls=`` (``no-starttls-counter``, ``no-commands``): plaintext,
  unless the service uses implicit TLS (wrapper mode, port 465), where no STARTTLS is ever
  sent and a session with a successful command was encrypted.

A **stretch** is the evidence unit: one input file, one host, one calendar day, and one
*epoch* of that host's Postfix (a ``daemon started`` or ``reload`` line of its master starts
a new one: a log level can only change there). Evidence of a (stretch, service):

* ``tls_lines``: TLS summary lines the service wrote (TLS logging was on);
* ``starttls``: its smtpd sessions that counted a STARTTLS (not an implicit-TLS service);
* ``implicit``: sessions with TLS (a TLS line, or a failed handshake) but counters without
  ``starttls=`` (an implicit-TLS service).

Because a stretch never spans two inputs, a session that lies wholly inside a file gets the
same verdict whether the file is read alone or with others, and for any chunking; the
history store can keep the evidence table and settle again after each ingest.

This module is plain Python: `decide` is the rule, `Evidence` the table the fold fills;
`tlslog.table.settle` applies the decisions to a session table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["Evidence", "Flags", "Stretch", "decide", "implicit_tls", "PENDING"]

PENDING = "pending"
#: (source, host, service, epoch, day): a service in one stretch of log.
Stretch = tuple[str | None, str | None, str, int, int]

_IMPLICIT_TLS_NAMES = frozenset({"smtps", "submissions"})


class Flags:
    """What one stretch shows about one service (counts, so that tables add up)."""

    __slots__ = ("implicit", "starttls", "tls_lines")

    def __init__(self, tls_lines: int = 0, starttls: int = 0, implicit: int = 0) -> None:
        self.tls_lines = tls_lines
        self.starttls = starttls
        self.implicit = implicit

    def add(self, other: Flags) -> None:
        self.tls_lines += other.tls_lines
        self.starttls += other.starttls
        self.implicit += other.implicit

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Flags) and (self.tls_lines, self.starttls, self.implicit) == (
            other.tls_lines, other.starttls, other.implicit)

    def __repr__(self) -> str:
        return f"Flags(tls_lines={self.tls_lines}, starttls={self.starttls}, implicit={self.implicit})"

    def __getstate__(self) -> tuple[int, int, int]:
        return self.tls_lines, self.starttls, self.implicit

    def __setstate__(self, state: tuple[int, int, int]) -> None:
        self.tls_lines, self.starttls, self.implicit = state


class Evidence:
    """The evidence table: `Flags` per `Stretch`."""

    __slots__ = ("by_stretch",)

    def __init__(self) -> None:
        self.by_stretch: dict[Stretch, Flags] = {}

    def flags(self, stretch: Stretch) -> Flags:
        """The flags of a stretch, created empty on first use (for the fold to count into)."""
        found = self.by_stretch.get(stretch)
        if found is None:
            found = self.by_stretch[stretch] = Flags()
        return found

    def get(self, stretch: Stretch) -> Flags:
        """The flags of a stretch, empty when it showed nothing."""
        return self.by_stretch.get(stretch) or Flags()

    def update(self, other: Evidence, epoch_base: dict[str | None, int] | None = None) -> None:
        """Add another table; its epochs count from ``epoch_base[host]`` (a later chunk's)."""
        for (source, host, service, epoch, day), flags in other.by_stretch.items():
            if epoch_base:
                epoch += epoch_base.get(host, 0)
            self.flags((source, host, service, epoch, day)).add(flags)

    def __iter__(self) -> Iterator[tuple[Stretch, Flags]]:
        return iter(sorted(self.by_stretch.items(), key=_stretch_order))

    def __len__(self) -> int:
        return len(self.by_stretch)

    def __getstate__(self) -> dict[Stretch, Flags]:
        return self.by_stretch

    def __setstate__(self, state: dict[Stretch, Flags]) -> None:
        self.by_stretch = state


def _stretch_order(item: tuple[Stretch, Flags]) -> tuple:
    source, host, service, epoch, day = item[0]
    return (source or "", host or "", service, epoch, day)


def implicit_tls(service: str, flags: Flags) -> bool:
    """True if sessions of this service start with a TLS handshake (no STARTTLS).

    Shown by a session with TLS but no ``starttls=`` counter, or by the stock master.cf names
    (``…/smtps/smtpd``, ``…/submissions/smtpd``); never when the stretch counted a STARTTLS.
    """
    if flags.starttls:
        return False
    if flags.implicit:
        return True
    parts = service.split("/")
    return len(parts) >= 3 and parts[-2] in _IMPLICIT_TLS_NAMES


def decide(fold_evidence: str, service: str, flags: Flags) -> tuple[str, str]:
    """The final (encryption, evidence) of a pending row, from its stretch's flags."""
    if fold_evidence in ("no-starttls-counter", "no-commands"):
        if implicit_tls(service, flags):
            return ("tls", "implicit-tls") if fold_evidence == "no-starttls-counter" else ("unknown", "implicit-tls")
        return "plaintext", fold_evidence
    if fold_evidence == "no-tls-line":
        if implicit_tls(service, flags):
            return "unknown", "implicit-tls"
        if flags.tls_lines:
            return "plaintext", "no-tls-line"
        return "unknown", "no-tls-logging"
    raise ValueError(f"not a pending fold verdict: {fold_evidence!r}")


def decisions(keys: Iterable[tuple[str | None, str | None, str, int, int, str]],
              evidence: Evidence) -> list[tuple[str, str]]:
    """`decide` for each (source, host, service, epoch, day, fold_evidence) key."""
    return [decide(fold_evidence, service, evidence.get((source, host, service, epoch, day)))
            for source, host, service, epoch, day, fold_evidence in keys]
