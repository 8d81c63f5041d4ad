"""Every rule's own samples, every example of the formats reference, every anchor corpus line.

``tests/data/expected_lines.json`` is the reviewed table of (line, tag, rule, fields) for the
125 example lines of the Postfix log formats reference and the 58 anchor corpus lines.
"""

from __future__ import annotations

import json

import pytest

from tlslog.grammars.common import DIAGNOSTIC
from tlslog.grammars import ANY_PROGRAM, PROGRAMS, UNKNOWN_PROGRAM, all_rules, smtp, tls
from tlslog.parse import RuleSet, parse_with_pyparsing
from tlslog.engine.scan import describe_line

from .conftest import DATA

RULE_SAMPLES = [
    pytest.param(rule, text, expected, id=f"{rule.name}:{text[:40]}")
    for rule in all_rules()
    for text, expected in rule.samples
]
EXPECTED = json.loads((DATA / "expected_lines.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("rule", "text", "expected"), RULE_SAMPLES)
def test_rule_samples(rule, text, expected):
    found = RuleSet([rule]).parse(text)
    assert found is not None, f"{rule.name} does not match its own sample"
    name, fields = found
    assert name == rule.name
    for key, value in expected.items():
        assert fields[key] == value, key


def test_every_rule_has_samples():
    assert [r.name for r in all_rules() if not r.samples] == []


def test_every_rule_names_its_elements():
    for rule in all_rules():
        assert rule.element.customName == rule.name
        assert rule.names(), f"{rule.name} yields no fields"


@pytest.mark.parametrize("entry", EXPECTED, ids=[e["source"] for e in EXPECTED])
def test_reference_and_anchor_lines(entry):
    record, found = describe_line(entry["line"])
    assert (record.tag if record else None) == entry["tag"]
    if entry["rule"] is None:
        assert found is None
        return
    assert found is not None
    name, fields = found
    assert name == entry["rule"]
    assert {k: v for k, v in fields.items() if v is not None} == entry["fields"]


def test_every_reference_example_is_covered():
    numbers = {int(e["source"].split(":")[1]) for e in EXPECTED if e["source"].startswith("reference:")}
    assert numbers == set(range(1, 126))


def test_all_tls_summary_lines_of_the_corpora_parse():
    lines = [e for e in EXPECTED if "TLS connection established" in e["line"] or "TLS connection reused" in e["line"]]
    assert len(lines) == 52
    assert all(e["rule"] == "tls_summary" for e in lines)


def test_anchor_corpus_lines_all_parse():
    anchors = [e for e in EXPECTED if e["source"].startswith("anchor:")]
    assert len(anchors) == 58
    assert [e["line"] for e in anchors if e["rule"] is None] == []


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_program_grammars_lower_completely(program):
    """Every shipped rule has a compiled fast path; pyparsing stays the reference."""
    assert RuleSet(PROGRAMS[program]).fallback_rules == []


CUT_LINES = [
    # cut in the middle of an IPv6 address, of the peer, of the counters, of the reason: the rule that
    # reads each (None: none)
    ("connect from mail.example.com[2001:db8:4864:20::", None),
    ("Anonymous TLS connection established from unknown[2001:db8::", None),
    ("disconnect from unknown[203.0.113.9] ehlo=1 starttls=0/", "disconnect"),
    ("4F1A23E0C7: to=<alice@example.net>, relay=mx.example.net[203.0.113.25]:25, delay=1.2, dsn=2.0.0,"
     " status=sent (250", "status_damaged"),
]


@pytest.mark.parametrize(("text", "rule"), CUT_LINES, ids=[text for text, _ in CUT_LINES])
def test_cut_lines_do_not_match_as_if_whole(text, rule):
    rules = PROGRAMS["smtpd"] if not text[0].isdigit() else PROGRAMS["smtp"]
    found = RuleSet(rules).parse(text)
    assert found == parse_with_pyparsing(rules, text)
    # a cut delivery is still a delivery, read by the lenient rule, never the strict one
    assert (found[0] if found else None) == rule


# -- every rule keeps its own lines in every ordered list it is part of ------------------------

RULE_LISTS = {**PROGRAMS, "unknown": UNKNOWN_PROGRAM}


@pytest.mark.parametrize("name", sorted(RULE_LISTS))
def test_samples_reach_their_own_rule_in_program_order(name):
    """PEG ordered choice: no rule earlier in a program's list takes another rule's samples."""
    rules = RULE_LISTS[name]
    parser = RuleSet(rules)
    stolen = [
        (rule.name, parser.parse(text), text)
        for rule in rules
        for text, _ in rule.samples
        if (parser.parse(text) or ("",))[0] != rule.name
    ]
    assert stolen == []


# -- TLS log level 2-4 detail ----------------------------------------------------------------

#: Real lines of Postfix 3.7.11 (``realpostfix/run.sh`` with TLS_LOGLEVEL=2, 3 and 4, with and
#: without CONN_CACHE/tlsproxy and TLS session caches), one per shape, with the rule they need.
REAL_DETAIL_LINES = [
    ("smtpd", "initializing the server-side TLS engine", "tls_engine_init"),
    ("smtp", "initializing the client-side TLS engine", "tls_engine_init"),
    ("smtpd", "setting up TLS connection from unknown[127.0.0.1]", "tls_setup"),
    ("tlsproxy", "setting up TLS connection to 127.0.0.1[127.0.0.1]:36035", "tls_setup"),
    ("smtpd", 'unknown[::1]: TLS cipher list "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"', "tls_cipher_list"),
    ("smtp", '127.0.0.1[127.0.0.1]:31035: TLS cipher list "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH:!aNULL"',
     "tls_cipher_list"),
    ("smtpd", "SSL_accept:before SSL initialization", "tls_state"),
    ("smtpd", "SSL_accept:SSLv3/TLS read client hello", "tls_state"),
    ("smtpd", "SSL_accept:TLSv1.3 early data", "tls_state"),
    ("smtpd", "SSL_accept:SSLv3/TLS write session ticket", "tls_state"),
    ("smtpd", "SSL_accept:error in error", "tls_state"),
    ("smtp", "SSL_connect:SSLv3/TLS write client hello", "tls_state"),
    ("smtp", "SSL_connect:SSL negotiation finished successfully", "tls_state"),
    ("tlsproxy", "SSL_connect:SSLv3/TLS read server session ticket", "tls_state"),
    ("smtpd", "SSL3 alert write:fatal:handshake failure", "tls_alert"),
    ("smtpd", "SSL3 alert read:fatal:internal error", "tls_alert"),
    ("smtpd", "SSL3 alert write:fatal:protocol version", "tls_alert"),
    ("smtpd", "subject=/CN=client.test", "tls_cert_name"),
    ("smtpd", "issuer=/CN=Harness Test CA", "tls_cert_name"),
    ("smtpd", "unknown[127.0.0.1]: depth=0 verify=0 subject=/CN=rogue-client.test", "tls_verify_depth"),
    ("smtp", "127.0.0.1[127.0.0.1]:31035: depth=1 verify=1 subject=/CN=Harness Test CA", "tls_verify_depth"),
    ("smtpd", "unknown[127.0.0.1]: subject_CN=client.test, issuer=Harness Test CA, fingerprint=08:37:F8:"
     "40:F7:10:7B:9F", "tls_peer_cert"),
    ("smtp", "127.0.0.1[127.0.0.1]:31037: subject_CN=selfsigned.test, issuer_CN=selfsigned.test,"
     " fingerprint=EF:DA:5B:1E, pkey_fingerprint=04:59:ED:2C", "tls_peer_cert"),
    ("smtpd", "unknown[::1]: Issuing session ticket, key expiration: 1796168053", "tls_session_ticket"),
    ("smtpd", "unknown[127.0.0.1]: Decrypting session ticket, key expiration: 1796168053", "tls_session_ticket"),
    ("smtpd", "unknown[127.0.0.1]: looking up session 30B2F698DACF1190DBBFE8D52CA9A1C3&s=127.0.0.1:36035"
     "&l=805306672 in smtpd cache", "tls_session_cache"),
    ("smtpd", "unknown[::1]: save session 30B2F698DACF1190DBBFE8D52CA9A1C3&s=[::1]:36025&l=805306672 to smtpd"
     " cache", "tls_session_cache"),
    ("smtpd", "unknown[127.0.0.1]: reloaded session 30B2F698DACF1190DBBFE8D52CA9A1C3&s=127.0.0.1:36035"
     "&l=805306672 from smtpd cache", "tls_session_cache"),
    ("tlsproxy", "looking for session smtp-tls13&[127.0.0.1]:36038&127.0.0.1&127.0.0.1&&5D0E7C9A in smtp cache",
     "tls_session_cache"),
    ("tlsproxy", "save session smtp&[127.0.0.1]:36035&127.0.0.1&127.0.0.1&&5D0E7C9A to smtp cache",
     "tls_session_cache"),
    ("tlsproxy", "127.0.0.1[127.0.0.1]:36035: Reusing old session", "tls_session_reused"),
    ("smtpd", "unknown[127.0.0.1]: Reusing old session (RFC 5077 session ticket)", "tls_session_reused"),
    ("smtpd", "read from 56419D1FEA60 [56419D21AB83] (5 bytes => -1)", "tls_bio"),
    ("smtpd", "read from 56419D1FEA60 [56419D21AB88] (512 bytes => 512 (0x200))", "tls_bio"),
    ("smtpd", "write to 56419D1FEA60 [56419D223D60] (2249 bytes => 2249 (0x8C9))", "tls_bio"),
    ("smtpd", "0000 16 03 01 02                                      ....", "tls_hex_dump"),
    ("smtpd", "0040 47 31 45 5f 13 4a a5 00|3e 13 02 13 03 13 01 c0  G1E_.J.. >.......", "tls_hex_dump"),
    ("smtpd", "0120 2a b7 a6 7f 00 15 00 d8|                         *....... ", "tls_hex_dump"),
    ("smtpd", "0128 - <SPACES/NULLS>", "tls_hex_dump_padding"),
    ("smtpd", "Read 33 chars: MAIL FROM:<sender1@client.test>??", "tls_stream_data"),
    ("smtpd", "Write 150 chars: 250-mx.local.test??250-PIPELINING??250-S", "tls_stream_data"),
    ("smtp", "Write 27 chars: EHLO mx.local.test??", "tls_stream_data"),
    ("smtp", "Read 7 chars: 221 2.0.0 Bye??", "tls_stream_data"),
]


@pytest.mark.parametrize(("program", "text", "rule"), REAL_DETAIL_LINES, ids=[t[:40] for _, t, _ in REAL_DETAIL_LINES])
def test_real_tls_detail_lines(program, text, rule):
    for rules in (PROGRAMS[program], UNKNOWN_PROGRAM, ANY_PROGRAM):
        found = RuleSet(rules).parse(text)
        assert found is not None and found[0] == rule
        assert found == parse_with_pyparsing(rules, text)
    assert rule in tls.DETAIL_NAMES


def test_detail_rules_are_in_every_tls_program_before_the_catch_alls():
    assert tls.DETAIL_NAMES == {rule.name for rule in tls.DETAIL_RULES}
    for rules in (PROGRAMS["smtpd"], PROGRAMS["smtp"], PROGRAMS["tlsproxy"], UNKNOWN_PROGRAM, ANY_PROGRAM):
        names = [rule.name for rule in rules]
        assert tls.DETAIL_NAMES <= set(names)
        last_detail = max(names.index(n) for n in tls.DETAIL_NAMES)
        for catch_all in ("peer_note", "queue_note", "delivery_note"):
            if catch_all in names:
                assert names.index(catch_all) > last_detail, catch_all
    # detail comes after the diagnostic rule (it is rare, diagnostics are not): no detail line
    # is a diagnostic, so that order cannot steal one
    diagnostic = RuleSet([DIAGNOSTIC])
    assert not [text for rule in tls.DETAIL_RULES for text, _ in rule.samples if diagnostic.parse(text)]
    # detail never carries a verdict: no rule the summary, failure or delivery logic reads
    assert not tls.DETAIL_NAMES & {r.name for r in tls.RULES}
    assert not tls.DETAIL_NAMES & {"status", "status_damaged", "delivery_note", "peer_note"}


def test_hex_dump_columns_are_exact():
    """48 hex columns, then one space, then the ASCII: a leading space of the ASCII stays in it."""
    parser = RuleSet([tls.HEX_DUMP])
    name, fields = parser.parse("0000 20 41 42 43 44 45 46 47|48 49 4a 4b 4c 4d 4e 4f   ABCDEFG HIJKLMNO")
    assert len(fields["hex"]) == 48 and fields["ascii"] == " ABCDEFG HIJKLMNO"
    assert parser.parse("0000 16 03 01 02                                   ....") is None  # a column short
    assert parser.parse("0000 16 03 01 02 03 04 05 06 07|08 09 0a 0b 0c 0d 0e  ........ .......") is None
    assert parser.parse("0000 16 03 01 02 00 01 00 01 fc 03 03 54 15 49 ab 09  ........ ..T.I..") is None


# -- damaged delivery lines ----------------------------------------------------------------


def test_status_damaged_yields_exactly_the_fields_of_status():
    assert smtp.STATUS_DAMAGED.names() == smtp.STATUS.names()
    names = smtp.STATUS.names()
    for text, _ in smtp.STATUS_DAMAGED.samples:
        found = RuleSet(PROGRAMS["smtp"]).parse(text)
        assert found is not None and found[0] == "status_damaged"
        assert list(found[1]) == names


DELIVERY_LOOKING = [
    # neither status nor status_damaged can read these: counted as unparsed, never a note
    "4F1A23E0C7: to=<alice@example.net>, relay=mx.example.net[203.0.113.25]:25, delay=1.2, dsn=2.0.0, st",
    "4F1A23E0C7: to=<alice@example.net>, relay=mx.example.net[203.0.113.25]:25, delay=1.2",
    "4F1A23E0C7: to=recipient@example.net, relay=mx.example.net[203.0.113.25]:25, dsn=5.0.0,\" status=bounced"
    " (host mx.example.net[203.0.113.25] said: 550 No Such User Here\"\" (in reply to RCPT TO command))\",,,,",
    "4F1A23E0C7: to=",
]


@pytest.mark.parametrize("text", DELIVERY_LOOKING)
def test_delivery_looking_lines_are_never_swallowed(text):
    for rules in (PROGRAMS["smtp"], PROGRAMS["smtpd"], UNKNOWN_PROGRAM, ANY_PROGRAM):
        assert RuleSet(rules).parse(text) is None
        assert parse_with_pyparsing(rules, text) is None


def test_intact_status_lines_stay_status():
    for text, _ in smtp.STATUS.samples:
        assert RuleSet(PROGRAMS["smtp"]).parse(text)[0] == "status"
