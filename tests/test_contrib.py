"""contrib/: the systemd units and timers verify, the cron lines parse, and the weekly mail
script builds a MIME message of the report (tlslog and sendmail faked)."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

CONTRIB = ROOT / "contrib"
UNITS = sorted(CONTRIB.glob("tlslog-*.service")) + sorted(CONTRIB.glob("tlslog-*.timer"))
MAIL = CONTRIB / "tlslog-weekly-mail"
DB = "/var/lib/tlslog/history.db"
HOST = os.uname().nodename


# -- systemd ------------------------------------------------------------------------------------

def test_the_units_are_there():
    assert [u.name for u in UNITS] == ["tlslog-ingest.service", "tlslog-weekly.service",
                                       "tlslog-ingest.timer", "tlslog-weekly.timer"]


def _keys(unit: Path) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def test_the_services_run_as_tlslog_hardened_with_the_history_in_the_state_directory():
    ingest, weekly = (_keys(CONTRIB / f"tlslog-{name}.service") for name in ("ingest", "weekly"))
    assert ingest["ExecStart"] == [f"/usr/local/bin/tlslog ingest --journal --db {DB}"]
    assert weekly["ExecStart"] == [f"/usr/local/bin/tlslog-weekly-mail -d {DB} -f 90 postmaster"]
    assert ingest["SupplementaryGroups"] == ["systemd-journal adm"]
    for keys in (ingest, weekly):
        assert keys["User"] == ["tlslog"] and keys["Type"] == ["oneshot"] and keys["StateDirectory"] == ["tlslog"]
        for hardening in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
            assert keys[hardening] == ["yes"], hardening
        assert keys["ProtectSystem"] == ["strict"]
    assert _keys(CONTRIB / "tlslog-weekly.timer")["OnCalendar"] == ["Mon *-*-* 07:00:00"]
    assert _keys(CONTRIB / "tlslog-ingest.timer")["OnCalendar"] == ["*-*-* 00:20:00"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path):
    """Verified as installed, but with the programs where they are here (verify checks that
    ExecStart= is executable): no unknown key, bad value or missing program."""
    tlslog = Path(sys.executable).with_name("tlslog")
    assert os.access(tlslog, os.X_OK)
    for unit in UNITS:
        text = unit.read_text().replace("/usr/local/bin/tlslog-weekly-mail", str(MAIL))
        (tmp_path / unit.name).write_text(text.replace("/usr/local/bin/tlslog ", f"{tlslog} "))
    run = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(tmp_path / u.name) for u in UNITS)],
                         capture_output=True, text=True, timeout=60, check=False)
    output = run.stdout + run.stderr
    problems = [line for line in output.splitlines()  # (about our units: not the host's own)
                if re.search(r"Unknown (key|section|lvalue)|Failed|[Ii]nvalid|not executable|ignoring", line)
                and (str(tmp_path) in line or "tlslog-" in line)]
    assert (run.returncode, problems) == (0, [])


# -- cron ----------------------------------------------------------------------------------------

_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def test_the_cron_lines_parse():
    jobs = []
    for line in (CONTRIB / "tlslog.cron").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=", line):  # SHELL=, PATH=, MAILTO=
            continue
        fields = line.split(None, 6)
        assert len(fields) == 7, line
        for field, (low, high) in zip(fields[:5], _RANGES):
            assert _FIELD.match(field), (field, line)
            assert all(low <= int(n) <= high for n in re.findall(r"\d+", field.split("/")[0])), (field, line)
        assert fields[5] == "tlslog"
        assert "%" not in fields[6]  # cron would make it a newline
        jobs.append(fields[6])
    assert jobs == [f"tlslog ingest --journal --db {DB}",
                    f"tlslog-weekly-mail -d {DB} -f 90 postmaster"]


# -- the mail script ------------------------------------------------------------------------------

def test_the_mail_script_is_sh_and_executable():
    assert os.access(MAIL, os.X_OK)
    assert MAIL.read_text().startswith("#!/bin/sh\n")
    for shell in ("sh", "dash", "bash"):
        if shutil.which(shell):
            run = subprocess.run([shell, "-n", str(MAIL)], capture_output=True, text=True, check=False)
            assert (shell, run.returncode, run.stderr) == (shell, 0, "")


#: A report page with a line longer than mail allows: base64 keeps it whole.
HTML = "<!doctype html>\n<html><body><h1>TLS coverage</h1><svg>" + "<rect/>" * 300 + "</svg></body></html>\n"
JSON = ('{"inbound": {"messages": {"coverage": 0.97142}}, "outbound": {"messages": {"coverage": 0.995}},'
        ' "mx": {}}')


def _fakes(tmp_path: Path, status: int, *, html: str = HTML, sendmail_status: int = 0) -> dict[str, str]:
    """A tlslog that writes ``html`` (exit ``status``) or JSON, and a sendmail that keeps what it
    is given; the environment to run the script with."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "page.html").write_text(html)
    (tmp_path / "report.json").write_text(JSON)
    fakes = {
        "tlslog": f"""#!/bin/sh
printf '%s\\n' "$*" >> '{tmp_path}/tlslog.argv'
case "$*" in
    *"--format html"*) cat '{tmp_path}/page.html'; echo "tlslog: warning from the report" >&2; exit {status} ;;
    *) cat '{tmp_path}/report.json' ;;
esac
""",
        "sendmail": f"""#!/bin/sh
printf '%s\\n' "$@" > '{tmp_path}/sendmail.argv'
cat > '{tmp_path}/message'
exit {sendmail_status}
""",
    }
    for name, text in fakes.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}  # no /usr/sbin: never the real sendmail


def _mail(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MAIL), *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def _message(tmp_path: Path) -> email.message.EmailMessage:
    message = email.message_from_bytes((tmp_path / "message").read_bytes(), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_the_report_is_mailed_as_html_with_the_coverage_in_the_subject(tmp_path):
    run = _mail(tmp_path, _fakes(tmp_path, 0), "-d", "/srv/history.db", "-f", "90", "postmaster",
                "tls@example.org")
    assert (run.returncode, run.stderr) == (0, "tlslog: warning from the report\n")
    assert (tmp_path / "tlslog.argv").read_text().splitlines() == [
        "report --db /srv/history.db --since last-week --until last-week --by week --format html --fail-under 90",
        "report --db /srv/history.db --since last-week --until last-week --format json",
    ]
    assert (tmp_path / "sendmail.argv").read_text() == "-t\n"
    message = _message(tmp_path)
    assert message["To"] == "postmaster, tls@example.org"
    assert message["Subject"] == f"TLS coverage on {HOST}, last-week: in 97.1%, out 99.5%"
    assert message["MIME-Version"] == "1.0"
    headers = (tmp_path / "message").read_text().split("\n\n", 1)[0].splitlines()
    assert [h for h in headers if h.startswith("Content-")] == [
        "Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: base64"]
    assert message.get_content_type() == "text/html" and message.get_content() == HTML
    assert max(map(len, (tmp_path / "message").read_bytes().splitlines())) <= 78
    assert list(tmp_path.glob("tlslog-weekly.*")) == []  # its temporary directory is gone


def test_below_fail_under_the_report_is_mailed_as_an_alert_and_the_status_is_5(tmp_path):
    run = _mail(tmp_path, _fakes(tmp_path, 5), "-f", "in=90,out=95", "-p", "last-month", "postmaster")
    assert run.returncode == 5
    assert (tmp_path / "tlslog.argv").read_text().splitlines()[0] == (
        f"report --db {DB} --since last-month --until last-month --by week --format html --fail-under in=90,out=95")
    message = _message(tmp_path)
    assert message["Subject"] == f"ALERT: TLS coverage below in=90,out=95 on {HOST}, last-month: in 97.1%, out 99.5%"
    assert message.get_content() == HTML


def test_without_a_report_the_errors_are_mailed(tmp_path):
    run = _mail(tmp_path, _fakes(tmp_path, 7, html=""), "postmaster")
    assert run.returncode == 7
    message = _message(tmp_path)
    assert message["Subject"] == f"tlslog report failed (exit 7) on {HOST}, last-week: in 97.1%, out 99.5%"
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "tlslog: warning from the report\n"


def test_a_sendmail_failure_fails_the_script(tmp_path):
    run = _mail(tmp_path, _fakes(tmp_path, 0, sendmail_status=75), "postmaster")
    assert run.returncode == 1
    assert run.stderr.splitlines()[-1] == "tlslog-weekly-mail: sendmail -t failed: the report was not mailed"


def test_no_recipient_is_a_usage_error(tmp_path):
    run = _mail(tmp_path, _fakes(tmp_path, 0), "-d", DB)
    assert run.returncode == 2
    assert run.stderr.startswith("usage: tlslog-weekly-mail ")
    assert not (tmp_path / "message").exists()
