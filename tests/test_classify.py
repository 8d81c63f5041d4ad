"""Roles (MX, submission, outbound) and hops (mail on the wire or inside the mail system)."""

from __future__ import annotations

import json
import pickle

import pytest

from tlslog.classify import Classifier, parse_networks

from .conftest import ROOT, tlslog

EXTERNAL = ROOT.parent / "shared" / "corpus" / "external"


@pytest.mark.parametrize(("kind", "service", "extra", "role"), [
    ("inbound", "postfix/smtpd", (), "mx"),
    ("inbound", "postfix-in/smtpd", (), "mx"),
    ("inbound", "postfix/submission/smtpd", (), "submission"),
    ("inbound", "postfix/submissions/smtpd", (), "submission"),
    ("inbound", "postfix/smtps/smtpd", (), "submission"),
    ("inbound", "postfix/msa/smtpd", (), "submission"),
    ("inbound", "postfix/10025/smtpd", (), "mx"),
    ("inbound", "postfix/port587/smtpd", ("postfix/port587/smtpd",), "submission"),
    ("outbound", "postfix/submission/smtp", (), "outbound"),
])
def test_roles(kind, service, extra, role):
    assert Classifier(submission_services=frozenset(extra)).role(kind, service) == role


@pytest.mark.parametrize(("address", "networks", "internal"), [
    ("127.0.0.1", (), True), ("127.3.4.5", (), True), ("::1", (), True), ("::ffff:127.0.0.1", (), False),
    ("192.0.2.7", (), False), ("2001:db8::1", (), False), ("ipaddr", (), False), (None, (), False),
    ("10.1.2.3", ("10.0.0.0/8",), True), ("2001:db8::25", ("2001:db8::/32",), True),
    ("fe80::1%eth0", ("fe80::/10",), True),
])
def test_internal_peers(address, networks, internal):
    assert Classifier(networks=networks).internal_peer(address) is internal


def test_relays_services_and_none():
    rules = Classifier(internal_services=frozenset({"postfix/10025/smtpd"}))
    assert [rules.internal_relay(r) for r in ("private/dovecot-lmtp", "local", "none", "mx[192.0.2.1]:25", None)] == [
        True, True, False, False, False]
    assert (rules.internal_service("postfix/10025/smtpd"), rules.internal_service("postfix/smtpd")) == (True, False)
    off = Classifier(internal_services=frozenset({"postfix/10025/smtpd"}), hops=False)
    assert (off.internal_peer("127.0.0.1"), off.internal_relay("private/x"), off.internal_service("postfix/10025/smtpd")) \
        == (False, False, False)


def test_classifier_pickles_with_its_networks():
    rules = Classifier(networks=("10.0.0.0/8",))
    again = pickle.loads(pickle.dumps(rules))
    assert again == rules and again.internal_peer("10.9.9.9") and not again.internal_peer("11.0.0.1")


def test_parse_networks():
    assert parse_networks(" 10.0.0.0/8, 2001:db8::/32 ,192.0.2.7") == ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32")
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/33")


SESSION = (
    "Nov 25 10:00:0{n} mx {svc}[{pid}]: connect from {peer}\n"
    "Nov 25 10:00:0{n} mx {svc}[{pid}]: ABCDEF012{n}: client={peer}\n"
    "Nov 25 10:00:0{n} mx {svc}[{pid}]: disconnect from {peer} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n"
)
DELIVERY = ("Nov 25 10:00:0{n} mx postfix/smtp[{pid}]: ABCDEF012{n}: to=<a@example.net>, relay={relay}, delay=1,"
            " delays=0/0/1/0, dsn=2.0.0, status=sent (250 ok)\n")


def test_a_content_filter_round_trip_is_counted_apart(tmp_path):
    """A message in from the world, out to amavis on loopback, back in, out to the world: one
    mail in and one out on the wire; the round trip is two internal hops."""
    log = (SESSION.format(n=1, svc="postfix/smtpd", pid=1, peer="client.example[192.0.2.7]")
           + DELIVERY.format(n=1, pid=2, relay="127.0.0.1[127.0.0.1]:10024")
           + SESSION.format(n=2, svc="postfix/10025/smtpd", pid=3, peer="localhost[127.0.0.1]")
           + DELIVERY.format(n=2, pid=4, relay="mx.example.net[203.0.113.25]:25"))
    path = tmp_path / "maillog"
    path.write_text(log, encoding="utf-8")
    report = json.loads(tlslog("report", str(path), "--format", "json", "--year", "2026").stdout)
    on_the_wire = [(report[k]["total"], report[k]["messages"]["total"]) for k in ("inbound", "mx", "submission", "outbound")]
    assert on_the_wire == [(1, 1), (1, 1), (0, 0), (1, 1)]
    assert (report["internal"]["inbound"]["total"], report["internal"]["outbound"]["total"]) == (1, 1)
    assert report["plaintext_peers"]["inbound"] == [{"peer_name": "client.example", "peer_ip": "192.0.2.7", "sessions": 1,
                                                   "total": 1, "share": 1.0, "status": "always-plaintext"}]
    everything = json.loads(tlslog("report", str(path), "--format", "json", "--internal", "none").stdout)
    assert (everything["inbound"]["total"], everything["outbound"]["total"], everything["internal"]["inbound"]["total"]) \
        == (2, 2, 0)
    # a service named internal, whatever its peers (a filter on another host)
    path.write_text(log.replace("localhost[127.0.0.1]", "filter.example[192.0.2.99]"), encoding="utf-8")
    by_peer = json.loads(tlslog("report", str(path), "--format", "json").stdout)
    by_service = json.loads(tlslog("report", str(path), "--format", "json",
                                   "--internal-service", "postfix/10025/smtpd").stdout)
    assert (by_peer["inbound"]["total"], by_peer["internal"]["inbound"]["total"]) == (2, 0)
    assert (by_service["inbound"]["total"], by_service["internal"]["inbound"]["total"]) == (1, 1)
    path.write_text(log, encoding="utf-8")
    sessions = [json.loads(line) for line in tlslog("sessions", str(path), "--format", "jsonl").stdout.splitlines()]
    assert [(s["role"], s["hop"]) for s in sessions] == [("mx", "external"), ("outbound", "internal"),
                                                         ("mx", "internal"), ("outbound", "external")]


def test_a_bad_network_is_a_usage_error(tmp_path):
    run = tlslog("report", str(tmp_path), "--internal", "10.0.0.0/33")
    assert run.code == 2 and "'10.0.0.0/33' does not appear to be an IPv4 or IPv6 network" in run.stderr


def test_coverage_on_the_wire_of_a_real_mx_with_a_content_filter():
    """The public lightmeter logs (a Debian MX with amavis): on the wire, and counted whole."""
    folder = EXTERNAL / "lightmeter-complete"
    if not folder.is_dir():
        pytest.skip(f"the external corpus is not beside the repository ({EXTERNAL})")
    files = [str(folder / "mail.log.1"), str(folder / "mail.log")]

    def coverage(*extra: str) -> list:
        report = json.loads(tlslog("report", *files, "--year", "2021", "--format", "json", *extra).stdout)
        return [(report[k]["total"], round(report[k]["coverage"], 3), report[k]["messages"]["total"])
                for k in ("inbound", "mx", "outbound")] + [report["internal"]["inbound"]["total"],
                                                           report["internal"]["outbound"]["total"]]

    assert coverage() == [(191, 0.932, 156), (129, 0.984, 107), (44, 0.909, 43), 155, 186]
    assert coverage("--internal", "none") == [(346, 0.514, 311), (284, 0.447, 262), (230, 0.174, 229), 0, 0]


@pytest.mark.parametrize(("address", "inside"), [
    ("127.0.0.1", True), ("127.255.0.9", True), ("::1", True), ("0:0:0:0:0:0:0:1", True), ("0000::0001", True),
    ("::1%lo", True), ("192.0.2.1", False), ("2001:db8::1", False), ("::ffff:127.0.0.1", False), ("1", False),
    ("ipaddr", False), ("10.0.0.1", False),
])
def test_loopback_in_every_spelling_without_and_with_networks(address, inside):
    from tlslog.classify import Classifier

    assert Classifier().internal_peer(address) is inside
    # with a network given, every address is parsed: the same answer for these
    assert Classifier(("198.51.100.0/24",)).internal_peer(address) is inside
