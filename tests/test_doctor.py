"""`tlslog doctor`: the configuration grammar, then the findings of postconf -n samples.

The samples (tests/data/postconf/) are written from the Postfix defaults (mail_params.h), from
Debian's default main.cf, from the settings of the blog post the project grew from, from a
hardened configuration and from a broken one; each must give exactly its findings.
"""

from __future__ import annotations

import json

import pytest

from tlslog.doctor import diagnose, protocols_allowed
from tlslog.grammars import postconf as grammar
from tlslog.parse import RuleSet, parse_with_pyparsing
from tlslog.postconf import Config, parse_main, parse_master

from .conftest import DATA, SAMPLES, tlslog

CONF = DATA / "postconf"


@pytest.mark.parametrize("rule", [grammar.PARAMETER, grammar.COMMENT, grammar.BLANK, grammar.CONTINUATION,
                                  grammar.SERVICE], ids=lambda r: r.name)
def test_grammar_samples_parse_the_same_both_ways(rule):
    for text, expected in rule.samples:
        fast = RuleSet([rule]).parse(text)
        assert fast == parse_with_pyparsing([rule], text), text
        assert fast is not None and fast[0] == rule.name, text
        assert {k: fast[1][k] for k in expected} == expected, text


def test_logical_lines_references_and_overrides():
    config = parse_main("# c\ncompatibility_level = 3.11\nsmtpd_tls_chain_files = a.pem,\n  # skipped\n"
                        "   b.pem\nsmtp_tls_loglevel = $smtpd_tls_loglevel\nsmtpd_tls_loglevel=${x}1\n"
                        "submission/inet/smtpd_tls_security_level = encrypt\n")
    assert config.parameters == {"compatibility_level": "3.11", "smtpd_tls_chain_files": "a.pem, b.pem",
                                 "smtp_tls_loglevel": "$smtpd_tls_loglevel", "smtpd_tls_loglevel": "${x}1"}
    assert config.value("smtp_tls_loglevel") == "${x}1"  # an unknown name stays as written
    assert config.value("smtp_tls_security_level") == "may"  # the 3.11 default at compatibility_level 3.11
    assert parse_main("compatibility_level = 3.10").value("smtp_tls_security_level") == ""
    assert config.services == {"submission/inet": {"smtpd_tls_security_level": "encrypt"}}
    parse_master((CONF / "master.cf").read_text(), config)
    assert config.commands == {"smtp/inet": "smtpd", "submission/inet": "smtpd", "relay/unix": "smtp"}
    assert config.services["submission/inet"] == {
        "smtpd_tls_security_level": "encrypt", "syslog_name": "postfix/submission", "smtpd_tls_loglevel": "0",
        "smtpd_client_restrictions": "permit_sasl_authenticated, reject"}
    assert config.value("smtpd_tls_security_level", "submission/inet") == "encrypt"
    assert config.unread == []


@pytest.mark.parametrize("text,allowed", [
    (">=TLSv1", ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]),
    ("!SSLv2, !SSLv3", ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]),
    ("!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", ["TLSv1.2", "TLSv1.3"]),
    ("TLSv1.2 TLSv1.3", ["TLSv1.2", "TLSv1.3"]),
    (">=TLSv1.2, <=TLSv1.2", ["TLSv1.2"]),
    ("", ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]),
])
def test_protocols_allowed(text, allowed):
    assert protocols_allowed(text) == allowed


EXPECTED = {
    "fresh-install.cf": [("smtpd-loglevel", "warning", None), ("smtpd-level-none", "warning", None),
                         ("smtp-loglevel", "warning", None), ("smtp-level-none", "warning", None)],
    "debian.cf": [("smtpd-loglevel", "warning", None), ("smtp-loglevel", "warning", None),
                  ("smtpd-tls-protocols-legacy", "info", None), ("smtpd-tls-mandatory-protocols-legacy", "info", None),
                  ("smtpd-anull", "info", None), ("smtp-tls-protocols-legacy", "info", None),
                  ("smtp-tls-mandatory-protocols-legacy", "info", None)],
    "seed.cf": [("smtp-tls-ciphers-weak", "warning", None), ("smtpd-tls-protocols-legacy", "info", None),
                ("smtpd-tls-mandatory-protocols-legacy", "info", None), ("smtp-tls-protocols-legacy", "info", None),
                ("smtp-tls-mandatory-protocols-legacy", "info", None)],
    "hardened.cf": [("smtpd-tls-protocols-legacy", "info", None), ("smtp-tls-protocols-legacy", "info", None)],
    "broken.cf": [("smtpd-tls-ciphers-null", "error", None), ("smtpd-no-certificate", "error", None),
                  ("smtp-no-trust-anchors", "error", None), ("smtpd-tls-protocols-ssl", "warning", None),
                  ("smtp-tls-mandatory-protocols-ssl", "warning", None),
                  ("smtp-tls-mandatory-protocols-legacy", "warning", None),
                  ("smtp-tls-mandatory-ciphers-weak", "warning", None), ("unread-line", "warning", None),
                  ("smtpd-obsolete-tls-switch", "info", None), ("smtpd-tls-mandatory-protocols-legacy", "info", None),
                  ("smtpd-anull", "info", None), ("smtp-tls-protocols-legacy", "info", None)],
}


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_findings_of_each_sample(sample):
    run = tlslog("doctor", str(CONF / sample), "--format", "json")
    data = json.loads(run.stdout)
    assert [(f["id"], f["severity"], f["service"]) for f in data["findings"]] == EXPECTED[sample]
    worst = {f["severity"] for f in data["findings"]}
    assert run.code == (8 if worst & {"error", "warning"} else 0)
    for finding in data["findings"]:
        assert finding["why"] and finding["fix"] and finding["message"]


def test_master_cf_overrides_are_checked_per_service():
    run = tlslog("doctor", str(CONF / "debian.cf"), "--master", str(CONF / "master.cf"), "--format", "json")
    found = [(f["id"], f["severity"], f["service"]) for f in json.loads(run.stdout)["findings"]]
    per_service = [f for f in found if f[2]]
    assert per_service == [("smtp-level-none", "warning", "relay/unix"),
                           ("smtpd-loglevel", "warning", "submission/inet"),
                           ("smtpd-tls-mandatory-protocols-legacy", "warning", "submission/inet")]
    assert ("smtpd-level-required", "warning", None) not in found  # encrypt on submission only is right


def test_the_fixes_are_the_lines_to_set():
    findings = {f.id: f for f in diagnose(parse_main((CONF / "fresh-install.cf").read_text()))}
    assert findings["smtpd-loglevel"].fix == "smtpd_tls_loglevel = 1"
    assert findings["smtp-level-none"].fix == "smtp_tls_security_level = may"
    assert findings["smtp-level-none"].value == "(unset: none)"
    assert "compatibility_level 3.11 (here 3.8)" in findings["smtp-level-none"].why


def test_required_tls_on_every_smtpd_and_dane_without_dnssec():
    found = {f.id: f.severity for f in diagnose(parse_main(
        "smtpd_tls_security_level = encrypt\nsmtpd_tls_cert_file = /x.pem\nsmtp_tls_security_level = dane\n"))}
    assert found["smtpd-level-required"] == "warning"
    assert found["smtp-dane-without-dnssec"] == "warning"


def test_relying_on_the_311_default_is_a_note():
    found = [(f.id, f.severity, f.value) for f in diagnose(parse_main("compatibility_level = 3.11\n"))]
    assert ("smtp-level-default", "info", "(unset: may)") in found


@pytest.mark.parametrize("certificates,finding", [(1, True), (2, False)])
def test_a_certificate_without_its_chain(tmp_path, certificates, finding):
    pem = tmp_path / "cert.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" * certificates)
    config = parse_main(f"smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {pem}\n")
    found = [f for f in diagnose(config) if f.id == "smtpd-no-chain"]
    assert bool(found) is finding
    if finding:
        assert found[0].fix == f"smtpd_tls_cert_file = {tmp_path / 'fullchain.pem'}"


def test_logs_inform_the_findings():
    month = SAMPLES / "synthetic" / "month.log.gz"
    run = tlslog("doctor", str(CONF / "seed.cf"), "--log", str(month), "--year", "2024", "--format", "json")
    data = json.loads(run.stdout)
    preference = [f for f in data["findings"] if f["id"] == "smtp-address-preference"]
    assert [f["severity"] for f in preference] == ["info"]
    assert preference[0]["why"] == "12% of 1,003 deliveries went over IPv6; TLS on IPv6 98%, on IPv4 80%."
    legacy = [f for f in data["findings"] if f["id"] == "smtpd-tls-protocols-legacy"][0]
    assert legacy["why"].endswith(f"The logs show {data['logs']['inbound_legacy']:,} TLS sessions on them.")
    assert data["logs"]["outbound_deliveries"] == 1003


def test_blind_config_beside_logs_that_see():
    month = SAMPLES / "synthetic" / "month.log.gz"
    run = tlslog("doctor", str(CONF / "fresh-install.cf"), "--log", str(month), "--year", "2024", "--format", "json")
    loglevel = [f for f in json.loads(run.stdout)["findings"] if f["id"] == "smtpd-loglevel"][0]
    assert "the configuration read may not be the one that wrote them" in loglevel["why"]


def test_standard_input_and_errors():
    run = tlslog("doctor", "-", "--format", "json", stdin=b"smtpd_tls_loglevel = 1\n")
    assert run.code == 8 and json.loads(run.stdout)["summary"] == {"error": 0, "warning": 3, "info": 0}
    missing = tlslog("doctor", "/nonexistent/main.cf")
    assert missing.code == 1 and missing.stderr == "tlslog: /nonexistent/main.cf: No such file or directory\n"


def test_table_and_markdown_render_every_finding():
    table = tlslog("doctor", str(CONF / "broken.cf"))
    assert table.stdout.startswith("3 errors, 5 warnings, 4 notes\n")
    assert "set: smtp_tls_CAfile = /etc/ssl/certs/ca-certificates.crt" in table.stdout
    markdown = tlslog("doctor", str(CONF / "broken.cf"), "--format", "markdown")
    rows = [line for line in markdown.stdout.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 12  # header, separator and one row per finding
    clean = Config()
    assert [f.id for f in diagnose(clean)][:2] == ["smtpd-loglevel", "smtpd-level-none"]
