"""Line prefixes: everything before the Postfix message text.

Detected per line, never per file (pitfall 11). The rules, with the lines they accept::

    classic      Jun  4 11:52:07 mx1 postfix/smtpd[14150]: connect from ...       syslog, space-padded day
                 Jun 04 11:52:07 mx1 postfix/smtpd[14150]: connect from ...       postlogd / journalctl, zero-padded
                 Jun 04 11:52:07.123456 mx1 postfix/smtpd[14150]: ...             journalctl -o short-precise
    docker       2026-06-04T09:52:07.123456789Z Jun 04 11:52:07 mail postfix/smtpd[97]: ...   docker logs -t
    iso          2026-11-24T12:00:00.123456+01:00 mx1 postfix/smtpd[14150]: ...  RSYSLOG_FileFormat,
                 2026-06-04T11:52:07+0200 mx1 postfix/smtpd[14150]: ...           journalctl -o short-iso(-precise)
    rfc5424      <22>1 2026-11-24T12:00:00.123456+01:00 mx1 postfix/smtpd 14150 - - connect from ...
                 <22>1 2026-11-24T12:00:00+01:00 mx1 postfix 14150 - - ...         rsyslog cuts APP-NAME at '/'
    tag_only     postfix/smtpd[process-id]: Anonymous TLS connection ...          documentation excerpts

``journalctl -o json`` lines are JSON objects and are read in `tlslog.lines`, not here.
The tag is ``syslog_name/program[pid]``; the pid may be missing (some forwarders drop it).
"""

from __future__ import annotations

import pyparsing as pp

from .common import HOST, REST, SP, Rule, fragment, lit

MONTH = pp.Regex(r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec").set_name("month")
DAY = pp.Regex(r"[ 0-3]?[0-9]").set_name("day")
CLOCK = pp.Regex(r"[0-2][0-9]:[0-5][0-9]:[0-6][0-9](?:\.[0-9]+)?").set_name("time of day")
#: ``Jun  4 11:52:07``: RFC 3164, no year, no zone.
CLASSIC_STAMP = pp.Combine(MONTH + SP + DAY + SP + CLOCK).set_name("syslog timestamp")
#: ``2026-11-24T12:00:00.123456+01:00``, ``...Z``, ``...+0100`` (older journalctl).
ISO_STAMP = pp.Regex(
    r"[0-9]{4}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]:[0-6][0-9](?:\.[0-9]+)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
).set_name("RFC 3339 timestamp")

LOG_HOST = HOST.copy().set_name("logging host")
#: ``postfix/smtpd``, ``postfix/submission/smtpd``, ``postfix-out/smtp``, ``dovecot``...
TAG = pp.Regex(r"[^\s\[\]:]+(?::(?! )[^\s\[\]:]*)*").set_name("tag")
PID = pp.CharsNotIn("]").set_name("pid")
TAG_PID = TAG("tag") + pp.Opt(lit("[") + PID("pid") + lit("]")) + lit(": ")

CLASSIC = Rule.define(
    "classic",
    CLASSIC_STAMP("stamp") + SP + LOG_HOST("host") + SP + TAG_PID + REST("message"),
    samples=[
        (
            "Jun  4 11:52:07 mx1 postfix/smtpd[14150]: connect from x[192.0.2.1]",
            {"stamp": "Jun  4 11:52:07", "host": "mx1", "tag": "postfix/smtpd", "pid": "14150",
             "message": "connect from x[192.0.2.1]"},
        ),
        (
            "Jun 04 11:52:07.123456 mx1 postfix-out/smtp[2231]: hello",
            {"stamp": "Jun 04 11:52:07.123456", "tag": "postfix-out/smtp", "message": "hello"},
        ),
        ("Feb 13 23:31:30 ahost dovecot: imap-login: Login", {"tag": "dovecot", "pid": None}),
    ],
)

#: What follows ``STAMP HOST `` in a classic line. Consecutive lines usually share their stamp
#: and host, so the pipeline matches a line that starts like the previous one from here on;
#: together with that already-matched start this is exactly `CLASSIC`.
CLASSIC_TAIL = Rule.define(
    "classic_tail",
    TAG_PID + REST("message"),
    samples=[("postfix/smtpd[14150]: connect from x[192.0.2.1]", {"tag": "postfix/smtpd", "pid": "14150"})],
)
#: The tag part alone: since ``REST`` matches any text without a newline, a line (which has
#: none) matches `CLASSIC_TAIL` exactly when it matches this; the message starts at its end.
TAG_PID_ONLY = fragment(TAG_PID)

DOCKER = Rule.define(
    "docker",
    ISO_STAMP("stamp") + SP + CLASSIC_STAMP("inner_stamp") + SP + LOG_HOST("host") + SP
    + TAG_PID + REST("message"),
    samples=[
        (
            "2026-06-04T09:52:07.123456789Z Jun 04 11:52:07 mail postfix/smtpd[97]: connect from"
            " unknown[172.17.0.1]",
            {"stamp": "2026-06-04T09:52:07.123456789Z", "inner_stamp": "Jun 04 11:52:07",
             "host": "mail", "pid": "97"},
        ),
    ],
)

ISO = Rule.define(
    "iso",
    ISO_STAMP("stamp") + SP + LOG_HOST("host") + SP + TAG_PID + REST("message"),
    samples=[
        (
            "2026-11-24T12:00:00.123456+01:00 mx1 postfix/smtpd[14150]: connect from a[192.0.2.1]",
            {"stamp": "2026-11-24T12:00:00.123456+01:00", "host": "mx1", "tag": "postfix/smtpd"},
        ),
        ("2026-06-04T11:52:07+0200 mx1 postfix/smtpd[1]: x", {"stamp": "2026-06-04T11:52:07+0200"}),
    ],
)

#: RFC 5424: ``<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG``.
NIL = lit("-")
SD = (NIL | pp.Regex(r'(?:\[[^\]\s]+(?: [^=\s\]]+="(?:[^"\\]|\\.)*")*\])+')).set_name("structured data")
RFC5424 = Rule.define(
    "rfc5424",
    lit("<") + pp.Word(pp.nums)("pri") + lit(">") + pp.Word(pp.nums)("version") + SP
    + (NIL | ISO_STAMP("stamp")) + SP + LOG_HOST("host") + SP
    + pp.CharsNotIn(" ")("tag") + SP + pp.CharsNotIn(" ")("pid") + SP + pp.CharsNotIn(" ")("msgid")
    + SP + SD + pp.Opt(SP + pp.Opt(lit("\ufeff")) + REST("message")),
    samples=[
        (
            "<22>1 2026-11-24T12:00:00.123456+01:00 mx1 postfix 14150 - - Anonymous TLS",
            {"pri": "22", "tag": "postfix", "pid": "14150", "message": "Anonymous TLS"},
        ),
        (
            '<22>1 2026-11-24T12:00:00.123+01:00 mx1.example.com postfix/smtpd 14150 - [x@1 a="b c"] connect',
            {"host": "mx1.example.com", "tag": "postfix/smtpd", "message": "connect"},
        ),
    ],
)

TAG_ONLY = Rule.define(
    "tag_only",
    TAG("tag") + lit("[") + PID("pid") + lit("]") + lit(": ") + REST("message"),
    samples=[
        ("postfix/smtp[process-id]: Host offered STARTTLS: [x]", {"tag": "postfix/smtp", "pid": "process-id"}),
    ],
)

#: In the order a line is tried; `tlslog.lines` picks the first candidate by the first character.
RULES = [CLASSIC, DOCKER, ISO, RFC5424, TAG_ONLY]
