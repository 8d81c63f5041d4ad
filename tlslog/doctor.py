"""What in a Postfix configuration keeps TLS weak or the log blind: findings, each with why it
matters and the line to set. Pure functions of a `tlslog.postconf.Config` and, optionally, of
the session table of the logs that configuration wrote (`LogEvidence`).

Severities: ``error`` (TLS cannot work as configured), ``warning`` (weaker than it should be,
or the analyzer is blind), ``info`` (worth knowing). ``tlslog doctor`` exits with
`tlslog.errors.EXIT_FINDINGS` when a warning or an error is found.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .postconf import Config
from .schema import Projection

__all__ = ["COLUMNS", "SEVERITIES", "Finding", "LogEvidence", "diagnose", "effective_level", "log_evidence",
           "protocols_allowed"]

#: What `log_evidence` reads of the session table.
COLUMNS = Projection(("kind", "encryption", "protocol", "ip_version", "hop"))

SEVERITIES = ("error", "warning", "info")
_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_SIDES = {"smtpd": "the SMTP server (inbound)", "smtp": "the SMTP client (outbound)"}
_LEVELS = ("none", "may", "encrypt", "dane", "dane-only", "fingerprint", "verify", "secure")


@dataclass(frozen=True)
class Finding:
    """One finding: ``setting`` as effective (``value``), what is wrong, why, and the fix."""

    id: str
    severity: str
    setting: str
    value: str
    message: str
    why: str
    fix: str
    service: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LogEvidence:
    """What the logs say about the settings the doctor checks (from the session table)."""

    inbound_sessions: int = 0
    inbound_tls_lines: int = 0  # TLS sessions whose protocol a TLS line named
    inbound_legacy: int = 0  # TLS sessions on TLSv1 or TLSv1.1
    outbound_deliveries: int = 0
    outbound_tls_lines: int = 0
    outbound_legacy: int = 0
    outbound_ipv4: int = 0
    outbound_ipv6: int = 0
    outbound_ipv4_tls: int = 0
    outbound_ipv6_tls: int = 0


def log_evidence(frame: pd.DataFrame) -> LogEvidence:
    """Counts of mail on the wire (external rows) that the checks compare with."""
    external = (frame["hop"] == "external").to_numpy()
    inbound = external & (frame["kind"] == "inbound").to_numpy()
    outbound = external & ~(frame["kind"] == "inbound").to_numpy()
    tls = (frame["encryption"] == "tls").to_numpy()
    named = ~frame["protocol"].isna().to_numpy()
    legacy = frame["protocol"].isin(["TLSv1", "TLSv1.1", "SSLv3", "SSLv2"]).to_numpy()
    version = frame["ip_version"].to_numpy(dtype=float, na_value=np.nan)
    v4, v6 = version == 4, version == 6
    count = lambda mask: int(np.count_nonzero(mask))  # noqa: E731
    return LogEvidence(
        inbound_sessions=count(inbound), inbound_tls_lines=count(inbound & tls & named),
        inbound_legacy=count(inbound & tls & legacy), outbound_deliveries=count(outbound),
        outbound_tls_lines=count(outbound & tls & named), outbound_legacy=count(outbound & tls & legacy),
        outbound_ipv4=count(outbound & v4), outbound_ipv6=count(outbound & v6),
        outbound_ipv4_tls=count(outbound & v4 & tls), outbound_ipv6_tls=count(outbound & v6 & tls),
    )


def protocols_allowed(text: str) -> list[str]:
    """The protocols a ``*_tls_protocols`` value allows: ``!SSLv2, !SSLv3`` (exclusions),
    ``TLSv1.2 TLSv1.3`` (a list), ``>=TLSv1.2`` / ``<=TLSv1.2`` (3.6+ bounds), or a mix."""
    tokens = [t for t in text.replace(",", " ").replace(":", " ").split() if t]
    included = [t for t in tokens if t in _PROTOCOLS]
    allowed = list(included) if included else list(_PROTOCOLS)
    for token in tokens:
        if token.startswith("!") and token[1:] in allowed:
            allowed.remove(token[1:])
        elif token.startswith(">=") and token[2:] in _PROTOCOLS:
            allowed = [p for p in allowed if _PROTOCOLS.index(p) >= _PROTOCOLS.index(token[2:])]
        elif token.startswith("<=") and token[2:] in _PROTOCOLS:
            allowed = [p for p in allowed if _PROTOCOLS.index(p) <= _PROTOCOLS.index(token[2:])]
    return allowed


def _shown(value: str) -> str:
    return value if value else "(empty)"


def effective_level(config: Config, side: str, service: str | None = None) -> tuple[str, str]:
    """(level, where it comes from): the security level, or what the obsolete ``*_use_tls`` and
    ``*_enforce_tls`` give when it is empty."""
    level = config.value(f"{side}_tls_security_level", service).strip()
    if level:
        return level, f"{side}_tls_security_level"
    if config.value(f"{side}_enforce_tls", service).strip().lower() == "yes":
        return "encrypt", f"{side}_enforce_tls"
    if config.value(f"{side}_use_tls", service).strip().lower() == "yes":
        return "may", f"{side}_use_tls"
    return "none", f"{side}_tls_security_level"


def _loglevel(config: Config, side: str, service: str | None, logs: LogEvidence | None) -> list[Finding]:
    name = f"{side}_tls_loglevel"
    value = config.value(name, service).strip()
    if value not in ("", "0"):
        return []
    seen = logs is not None and (logs.inbound_tls_lines if side == "smtpd" else logs.outbound_tls_lines)
    note = (" (the logs given do hold TLS lines of this side: the configuration read may not be the one that "
            "wrote them)") if seen else ""
    why = ("At level 0 Postfix logs no TLS line for " + _SIDES[side] + ": protocol, cipher and trust are lost"
           + ("; only the starttls= counters of disconnect lines still show that a session used TLS"
              if side == "smtpd" else "; a delivery's TLS is then known only from Postfix 3.11's tls= field, and "
              "without it tlslog counts the delivery as unknown")
           + ". Level 1 logs one summary line per TLS session." + note)
    return [Finding(f"{side}-loglevel", "warning", name, _shown(value), "TLS logging is off: the log is blind",
                    why, f"{name} = 1", service)]


def _security_level(config: Config, side: str, service: str | None) -> list[Finding]:
    level, source = effective_level(config, side, service)
    name = f"{side}_tls_security_level"
    out: list[Finding] = []
    if source != name:
        out.append(Finding(f"{side}-obsolete-tls-switch", "info", source, config.value(source, service),
                           f"{source} is obsolete", f"It means {name} = {level}; the security level says the "
                           "same and is what current documentation and tools read.", f"{name} = {level}", service))
    if level not in _LEVELS:
        out.append(Finding(f"{side}-level-unknown", "warning", name, level, f"{level!r} is not a security level",
                           f"Postfix knows {', '.join(_LEVELS)}.", f"{name} = may", service))
    elif level == "none":
        compat = config.value("compatibility_level")
        unset = not config.is_set(name, service) and source == name
        if side == "smtpd":
            message, why = ("the server never offers STARTTLS", "Every inbound session, submission included, "
                            "is plaintext: clients cannot encrypt even when they would.")
        else:
            message = "outbound mail is never encrypted"
            why = "Every delivery goes out in plaintext, even to servers that offer STARTTLS."
            if unset:
                why += (f" Unset, the level is none below compatibility_level 3.11 (here {_shown(compat)}); "
                        "Postfix 3.11 makes may the default at compatibility_level = 3.11.")
        out.append(Finding(f"{side}-level-none", "warning", name, "none" if not unset else "(unset: none)",
                           message, why, f"{name} = may", service))
    elif side == "smtp" and not config.is_set(name, service) and source == name:
        out.append(Finding("smtp-level-default", "info", name, f"(unset: {level})",
                           "outbound TLS relies on the Postfix 3.11 default",
                           f"compatibility_level = {config.value('compatibility_level')} gives may; an older "
                           "compatibility_level would turn outbound TLS off. Set it explicitly.",
                           f"{name} = may", service))
    elif side == "smtpd" and level in ("encrypt", "dane", "dane-only", "verify", "secure") and service is None:
        out.append(Finding("smtpd-level-required", "warning", name, level,
                           "the server refuses mail without STARTTLS on every smtpd service",
                           "RFC 3207: a publicly referenced MX must not require TLS; servers that cannot "
                           "encrypt get their mail refused. Require it on submission only (master.cf "
                           "-o smtpd_tls_security_level=encrypt).", f"{name} = may", service))
    return out


def _protocols(config: Config, side: str, service: str | None, logs: LogEvidence | None) -> list[Finding]:
    out: list[Finding] = []
    level, _ = effective_level(config, side, service)
    for mandatory in (False, True):
        name = f"{side}_tls_{'mandatory_' if mandatory else ''}protocols"
        value = config.value(name, service)
        allowed = protocols_allowed(value)
        old = [p for p in allowed if p in ("SSLv2", "SSLv3")]
        legacy = [p for p in allowed if p in ("TLSv1", "TLSv1.1")]
        used = level not in ("none", "may") if mandatory else level != "none"
        if old:
            out.append(Finding(f"{name.replace('_', '-')}-ssl", "warning" if used else "info", name, _shown(value),
                               f"{' and '.join(old)} allowed",
                               "SSL 2 and 3 are broken (DROWN, POODLE); OpenSSL builds of today refuse them, "
                               "but the setting should say so.", f"{name} = >=TLSv1.2", service))
        if legacy:
            if mandatory:
                severity, why = ("warning" if used else "info",
                                 "Where TLS is required (encrypt and above) there is no plaintext to fall back "
                                 "to: require TLS 1.2 or later (RFC 8996 deprecates TLS 1.0 and 1.1).")
            else:
                count = None if logs is None else (logs.inbound_legacy if side == "smtpd" else logs.outbound_legacy)
                severity = "info"
                why = ("For opportunistic TLS the alternative to an old protocol is plaintext, so Postfix allows "
                       "them by default; excluding them makes such peers fall back to plaintext.")
                if count is not None:
                    why += f" The logs show {count:,} TLS {'sessions' if side == 'smtpd' else 'deliveries'} on them."
            out.append(Finding(f"{name.replace('_', '-')}-legacy", severity, name, _shown(value),
                               f"{' and '.join(legacy)} allowed", why,
                               f"{name} = >=TLSv1.2  (Postfix < 3.6: !SSLv2, !SSLv3, !TLSv1, !TLSv1.1)", service))
    return out


def _ciphers(config: Config, side: str, service: str | None) -> list[Finding]:
    out: list[Finding] = []
    for mandatory in (False, True):
        name = f"{side}_tls_{'mandatory_' if mandatory else ''}ciphers"
        grade = config.value(name, service).strip().lower()
        if grade == "null":
            out.append(Finding(f"{name.replace('_', '-')}-null", "error", name, grade,
                               "cipher grade null: TLS without encryption",
                               "The null grade offers only ciphers that do not encrypt: the session looks like "
                               "TLS and is readable by anyone on the path.", f"{name} = medium", service))
        elif grade in ("export", "low"):
            out.append(Finding(f"{name.replace('_', '-')}-weak", "warning", name, grade, f"cipher grade {grade}",
                               "Export and low grades allow 40- to 64-bit ciphers that are broken in minutes; "
                               "medium (the default) or high is the choice for SMTP.", f"{name} = medium", service))
    if side == "smtpd":
        name = "smtpd_tls_exclude_ciphers"
        excluded = config.value(name, service).replace(",", " ").split()
        if "aNULL" not in excluded:
            out.append(Finding("smtpd-anull", "info", name, _shown(" ".join(excluded)),
                               "anonymous cipher suites (aNULL) are not excluded",
                               "Clients that do not check certificates may negotiate a suite without one: "
                               "encrypted, but open to a man in the middle, and logged as Anonymous TLS.",
                               f"{name} = aNULL" + (", " + ", ".join(excluded) if excluded else ""), service))
    return out


def _certificate(config: Config, service: str | None) -> list[Finding]:
    level, _ = effective_level(config, "smtpd", service)
    if level == "none":
        return []
    files = {name: config.value(name, service).strip() for name in
             ("smtpd_tls_chain_files", "smtpd_tls_cert_file", "smtpd_tls_eccert_file", "smtpd_tls_dcert_file")}
    if not any(files.values()):
        return [Finding("smtpd-no-certificate", "error", "smtpd_tls_cert_file", "(empty)",
                        "STARTTLS is offered without a certificate",
                        "With no certificate (smtpd_tls_chain_files or smtpd_tls_cert_file) every handshake "
                        "fails, and clients fall back to plaintext or give up.",
                        "smtpd_tls_chain_files = /etc/letsencrypt/live/example.com/privkey.pem, "
                        "/etc/letsencrypt/live/example.com/fullchain.pem", service)]
    if files["smtpd_tls_chain_files"]:
        paths = [p.strip() for p in files["smtpd_tls_chain_files"].replace(",", " ").split()]
        setting = "smtpd_tls_chain_files"
    else:
        paths, setting = [files["smtpd_tls_cert_file"]], "smtpd_tls_cert_file"
    certificates = 0
    for path in paths:
        try:
            with open(os.path.expanduser(path), "rb") as handle:
                certificates += handle.read(1 << 20).count(b"-----BEGIN CERTIFICATE-----")
        except OSError:
            return []  # not readable here (another machine's paths): not checked
    if certificates == 1:
        return [Finding("smtpd-no-chain", "warning", setting, ", ".join(paths),
                        "the certificate file holds no intermediate certificate",
                        "Clients that verify need the chain up to a root they know; with the server certificate "
                        "alone they see an untrusted certificate. Use the full chain (Let's Encrypt: "
                        "fullchain.pem, not cert.pem).",
                        f"{setting} = " + ", ".join(p.replace("cert.pem", "fullchain.pem") for p in paths), service)]
    return []


def _dane(config: Config, service: str | None) -> list[Finding]:
    level, _ = effective_level(config, "smtp", service)
    name = "smtp_dns_support_level"
    if level not in ("dane", "dane-only") or config.value(name, service).strip() == "dnssec":
        return []
    return [Finding("smtp-dane-without-dnssec", "warning", name, _shown(config.value(name, service)),
                    f"smtp_tls_security_level = {level} without DNSSEC lookups",
                    "DANE needs validated TLSA records: without smtp_dns_support_level = dnssec (and a validating "
                    "resolver) Postfix finds none, and dane acts as may.", f"{name} = dnssec", service)]


def _trust_anchors(config: Config, service: str | None) -> list[Finding]:
    level, _ = effective_level(config, "smtp", service)
    if level not in ("verify", "secure"):
        return []
    if (config.value("smtp_tls_CAfile", service).strip() or config.value("smtp_tls_CApath", service).strip()
            or config.value("tls_append_default_CA").strip().lower() == "yes"):
        return []
    return [Finding("smtp-no-trust-anchors", "error", "smtp_tls_CAfile", "(empty)",
                    f"smtp_tls_security_level = {level} without trust anchors",
                    "With no smtp_tls_CAfile or smtp_tls_CApath no server certificate can be verified: every "
                    "delivery that needs verification is deferred.",
                    "smtp_tls_CAfile = /etc/ssl/certs/ca-certificates.crt", service)]


def _address_preference(config: Config, logs: LogEvidence | None) -> list[Finding]:
    name = "smtp_address_preference"
    value = config.value(name).strip().lower()
    if logs is None or not logs.outbound_ipv4 + logs.outbound_ipv6:
        return []
    total = logs.outbound_ipv4 + logs.outbound_ipv6
    share = logs.outbound_ipv6 / total
    cover4 = logs.outbound_ipv4_tls / logs.outbound_ipv4 if logs.outbound_ipv4 else None
    cover6 = logs.outbound_ipv6_tls / logs.outbound_ipv6 if logs.outbound_ipv6 else None
    shown = lambda c: "–" if c is None else f"{c:.0%}"  # noqa: E731
    facts = (f"{share:.0%} of {total:,} deliveries went over IPv6; TLS on IPv6 {shown(cover6)}, on IPv4 "
             f"{shown(cover4)}.")
    if value == "ipv6" and cover6 is not None and cover4 is not None and cover6 < cover4 - 0.05:
        return [Finding("smtp-address-preference", "warning", name, value,
                        "IPv6 is preferred, and deliveries over IPv6 are encrypted less often",
                        facts + " Some destinations' IPv6 servers do not offer STARTTLS: preferring them moves "
                        "mail to plaintext.", f"{name} = any", None)]
    return [Finding("smtp-address-preference", "info", name, value, "delivery address family", facts,
                    f"{name} = {value}", None)]


def _checks(config: Config, service: str | None, logs: LogEvidence | None) -> list[Finding]:
    out: list[Finding] = []
    for side in ("smtpd", "smtp"):
        out += _loglevel(config, side, service, logs)
        out += _security_level(config, side, service)
        if effective_level(config, side, service)[0] != "none":  # protocols and ciphers of TLS never used: moot
            out += _protocols(config, side, service, logs)
            out += _ciphers(config, side, service)
    out += _certificate(config, service)
    out += _trust_anchors(config, service)
    out += _dane(config, service)
    return out


def diagnose(config: Config, logs: LogEvidence | None = None) -> list[Finding]:
    """Every finding, most severe first: the main configuration's, then each master.cf service's
    own (only the settings it overrides), then lines that were not understood."""
    found = _checks(config, None, logs) + _address_preference(config, logs)
    main = {(f.id, f.severity, f.value) for f in found}
    for service, overrides in sorted(config.services.items()):
        side = {"smtpd": "smtpd", "smtp": "smtp"}.get(config.commands.get(service, ""))
        if not overrides:
            continue
        for finding in _checks(config, service, logs):
            if side is not None and not finding.setting.startswith(side + "_"):
                continue
            # its own settings, and what its own security level changes (mandatory protocols at encrypt)
            level = f"{finding.setting.split('_', 1)[0]}_tls_security_level" in overrides
            if finding.setting in overrides or (level and (finding.id, finding.severity, finding.value) not in main):
                found.append(finding)
    for number, line in config.unread:
        found.append(Finding("unread-line", "warning", "(line)", str(number), f"line {number} not understood",
                             "A line that is neither a setting, a comment nor a continuation: Postfix would "
                             "reject it too. It was left out.", line.strip()[:200]))
    return sorted(found, key=lambda f: SEVERITIES.index(f.severity))
