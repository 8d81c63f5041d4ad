"""Read Postfix configuration: ``postconf -n`` output or ``main.cf``, and ``master.cf`` overrides.

Lines are matched with the rules of ``grammars/postconf.py``; a line that starts with blanks
continues the logical line before it, comments and blank lines are skipped (``postconf(5)``).
Values keep their ``$name`` references until `Config.value` expands them, with the Postfix
defaults of the parameters the doctor reads (``DEFAULTS``, from ``src/global/mail_params.h``)
where the text sets none: ``postconf -n`` shows only what differs from the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

from .grammars import postconf as grammar
from .parse import RuleSet

__all__ = ["DEFAULTS", "Config", "parse_main", "parse_master"]

#: Defaults of the parameters the doctor reads (Postfix 3.11; ``smtp_tls_security_level``
#: depends on ``compatibility_level``: see `Config.value`).
DEFAULTS: dict[str, str] = {
    "compatibility_level": "0",
    "smtpd_tls_security_level": "",
    "smtp_tls_security_level": "",
    "smtpd_use_tls": "no",
    "smtpd_enforce_tls": "no",
    "smtp_use_tls": "no",
    "smtp_enforce_tls": "no",
    "smtpd_tls_loglevel": "0",
    "smtp_tls_loglevel": "0",
    "smtpd_tls_protocols": ">=TLSv1",
    "smtpd_tls_mandatory_protocols": ">=TLSv1",
    "smtp_tls_protocols": ">=TLSv1",
    "smtp_tls_mandatory_protocols": ">=TLSv1",
    "smtpd_tls_ciphers": "medium",
    "smtpd_tls_mandatory_ciphers": "medium",
    "smtp_tls_ciphers": "medium",
    "smtp_tls_mandatory_ciphers": "medium",
    "smtpd_tls_exclude_ciphers": "",
    "smtpd_tls_mandatory_exclude_ciphers": "",
    "smtp_tls_exclude_ciphers": "",
    "smtp_tls_mandatory_exclude_ciphers": "",
    "smtpd_tls_cert_file": "",
    "smtpd_tls_chain_files": "",
    "smtpd_tls_eccert_file": "",
    "smtpd_tls_dcert_file": "",
    "smtp_tls_CAfile": "",
    "smtp_tls_CApath": "",
    "tls_append_default_CA": "no",
    "smtp_address_preference": "any",
    "smtp_dns_support_level": "",
    "inet_protocols": "all",
    "config_directory": "/etc/postfix",
}

_REFERENCE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|\(([A-Za-z0-9_]+)\)|([A-Za-z0-9_]+))")


_RULES = {"main": grammar.MAIN_RULES, "master": grammar.MASTER_RULES, "parameter": [grammar.PARAMETER],
          "service": [grammar.SERVICE]}


@cache
def _rules(name: str) -> RuleSet:
    """A file's line rules (``main``, ``master``) or one entry rule, compiled once."""
    return RuleSet(_RULES[name])


@dataclass
class Config:
    """Parameters as set (name → raw value; the last setting wins), per-service overrides
    (``service/type`` → name → raw value, from main.cf's ``service/type/name`` or master.cf's
    ``-o``), each service's command, and the lines that matched no rule (number, text)."""

    parameters: dict[str, str] = field(default_factory=dict)
    services: dict[str, dict[str, str]] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    unread: list[tuple[int, str]] = field(default_factory=list)

    def is_set(self, name: str, service: str | None = None) -> bool:
        return name in self.parameters or (service is not None and name in self.services.get(service, {}))

    def raw(self, name: str, service: str | None = None) -> str:
        """The value as written (a service's override first), or the default."""
        if service is not None and name in self.services.get(service, {}):
            return self.services[service][name]
        if name in self.parameters:
            return self.parameters[name]
        if name == "smtp_tls_security_level":
            return "may" if compatibility(self.value("compatibility_level")) >= (3, 11) else ""
        return DEFAULTS.get(name, "")

    def value(self, name: str, service: str | None = None) -> str:
        """The value with ``$name``, ``${name}`` and ``$(name)`` expanded (unknown names stay)."""
        return self._expand(self.raw(name, service), service, 0)

    def _expand(self, text: str, service: str | None, depth: int) -> str:
        if depth > 20 or "$" not in text:
            return text

        def one(m: re.Match) -> str:
            name = m.group(1) or m.group(2) or m.group(3)
            if not self.is_set(name, service) and name not in DEFAULTS:
                return m.group(0)
            return self._expand(self.raw(name, service), service, depth + 1)

        return _REFERENCE.sub(one, text)


def compatibility(text: str) -> tuple[int, ...]:
    """``3.6`` → (3, 6); what is not a version counts as 0 (the default level)."""
    parts = text.strip().split(".")
    if not all(p.isdigit() for p in parts):
        return (0,)
    return tuple(int(p) for p in parts)


def _logical_lines(text: str, kind: str, config: Config) -> list[tuple[int, str, dict | None]]:
    """(first line number, joined text, fields) of each logical line; the fields of its first
    line's match, None once continuation lines were joined to it; unmatched lines go to ``unread``."""
    rules = _rules(kind)
    out: list[tuple[int, str, dict | None]] = []
    for number, line in enumerate(text.splitlines(), 1):
        found = rules.parse(line)
        if found is None:
            config.unread.append((number, line))
            continue
        shape, fields = found
        if shape in ("comment", "blank"):
            continue
        if shape == "continuation":
            if out:
                out[-1] = (out[-1][0], f"{out[-1][1]} {fields['text'].strip()}", None)
            else:
                config.unread.append((number, line))
            continue
        out.append((number, line, fields))
    return out


def _entries(text: str, kind: str, entry: str, config: Config) -> Iterator[dict]:
    """The fields of each logical line that the rule ``entry`` reads (parsed again only when
    continuation lines were joined to it); the others go to ``unread``."""
    rule = _rules(entry)
    for number, line, fields in _logical_lines(text, kind, config):
        found = (entry, fields) if fields is not None else rule.parse(line)
        if found is None:
            config.unread.append((number, line))
        else:
            yield found[1]


def _setting(fields: dict) -> tuple[str, str]:
    """(name, value) of a ``parameter`` match; Postfix drops the blanks around the value."""
    return fields["name"], (fields["value"] or "").strip()


def parse_main(text: str, config: Config | None = None) -> Config:
    """``postconf -n`` output or a ``main.cf``."""
    config = config or Config()
    for fields in _entries(text, "main", "parameter", config):
        name, value = _setting(fields)
        if name.count("/") == 2:  # service/type/name (postconf -P form)
            service, kind, parameter_name = name.split("/")
            config.services.setdefault(f"{service}/{kind}", {})[parameter_name] = value
        else:
            config.parameters[name] = value
    return config


def _arguments(args: str) -> list[str]:
    """master.cf command arguments; ``{ text with blanks }`` is one argument (Postfix 3.0+)."""
    out: list[str] = []
    at = 0
    while at < len(args):
        if args[at] in " \t":
            at += 1
        elif args[at] == "{":
            end = args.find("}", at)
            end = len(args) if end < 0 else end
            out.append(args[at + 1 : end].strip())
            at = end + 1
        else:
            end = at
            while end < len(args) and args[end] not in " \t":
                end += 1
            out.append(args[at:end])
            at = end
    return out


def parse_master(text: str, config: Config) -> Config:
    """A ``master.cf``: each service's command and its ``-o name=value`` overrides."""
    for fields in _entries(text, "master", "service", config):
        key = f"{fields['service']}/{fields['type']}"
        config.commands[key] = fields["command"]
        overrides = config.services.setdefault(key, {})
        words = _arguments(fields["args"] or "")
        for option, value in zip(words, words[1:]):
            if option == "-o" and (setting := _rules("parameter").parse(value)) is not None:
                name, text = _setting(setting[1])
                overrides[name] = text
    return config
