"""Messages of the Postfix master daemon (``postfix/master``, ``postfix-out/master``).

Only two matter for TLS: a start and a reload are the only moments a new configuration (a new
``smtpd_tls_loglevel``, say) takes effect, so they begin a new epoch of evidence
(`tlslog.settle`)::

    daemon started -- version 3.7.11, configuration /etc/postfix
    reload -- version 2.11.1, configuration /etc/postfix

Other master lines carry no TLS evidence and are known without being parsed further::

    terminating on signal 15
    warning: process /usr/lib/postfix/sbin/smtpd pid 1234 exit status 1
"""

from __future__ import annotations

import pyparsing as pp

from .common import DIAGNOSTIC, REST, Rule, lit

VERSION = pp.CharsNotIn(",").set_name("version")

STARTED = Rule.define(
    "master_started",
    lit("daemon started -- version ") + VERSION("version") + lit(", configuration ") + REST("config"),
    samples=[("daemon started -- version 3.7.11, configuration /etc/postfix",
              {"version": "3.7.11", "config": "/etc/postfix"})],
)

RELOAD = Rule.define(
    "master_reload",
    lit("reload -- version ") + VERSION("version") + lit(", configuration ") + REST("config"),
    samples=[("reload -- version 2.11.1, configuration /etc/postfix", {"version": "2.11.1"})],
)

TERMINATING = Rule.define(
    "master_terminating",
    lit("terminating on signal ") + REST("signal"),
    samples=[("terminating on signal 15", {"signal": "15"})],
)

RULES = [STARTED, RELOAD, TERMINATING, DIAGNOSTIC]
#: Rules that start a new epoch of evidence.
RESTARTS = frozenset({STARTED.name, RELOAD.name})
