"""Real Postfix runs with ground truth: which sessions each run drives, and running them end to end.

Two runs, each its own private instance: ``loglevel1`` (``smtpd_tls_loglevel = smtp_tls_loglevel = 1``,
most scenarios, connection caching, SASL) and ``loglevel0`` (both 0: verdicts only from the disconnect
counters). Each writes ``maillog``, ``truth.jsonl`` and ``run-info.txt`` into ``OUT/<run>/``.

Write one fresh run, e.g. to refresh a bundled sample (needs root on Debian, installs packages if missing)::

    python -m tests.e2e.harness --out DIR [--run loglevel1|loglevel0]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .driver import Driver, Scenario, join, observation_problems, write_jsonl
from .pki import Pki, make_pki
from .postfix import CACHE_TTL_SECONDS, ROUTES, PostfixInstance, Unavailable, ensure_packages, postfix_version

DRAIN_TIMEOUT = 30
S = Scenario


def _relay(domain: str, v6: bool = False, tls: bool = False, rcpts: int = 1) -> Scenario:
    return S("relay_out", v6=v6, option=domain, tls=tls, rcpts=rcpts)


# Cached connections go first: their idle connections close (CACHE_TTL_SECONDS) while the rest runs.
LOGLEVEL1 = [
    _relay("cache.example", tls=True, rcpts=2), _relay("cache.example"), _relay("cache.example", tls=True),
    _relay("plaincache.example"), _relay("plaincache.example", v6=True),
    _relay("cache6.example", v6=True), _relay("cache6.example", v6=True, tls=True),
    S("in_plain"), S("in_plain", v6=True), S("in_starttls"), S("in_starttls", v6=True),
    S("in_tls12_cipher", option="ECDHE-RSA-AES128-GCM-SHA256"),
    S("in_tls12_cipher", v6=True, option="ECDHE-RSA-CHACHA20-POLY1305"),
    S("in_tls12_cipher", option="AES256-GCM-SHA384"), S("in_tls12_cipher", option="DHE-RSA-AES256-GCM-SHA384"),
    S("in_tls12_cipher", option="AES128-SHA"),
    S("in_tls13_suite", option="TLS_CHACHA20_POLY1305_SHA256"),
    S("in_tls13_suite", v6=True, option="TLS_AES_128_GCM_SHA256"),
    S("in_ccert_none"), S("in_ccert_untrusted", v6=True), S("in_ccert_untrusted"),
    S("in_ccert_trusted"), S("in_ccert_trusted", v6=True),
    S("in_quit_after_tls"), S("in_drop_after_tls"), S("in_drop_after_tls", v6=True),
    S("in_garbage_after_starttls"), S("in_garbage_after_starttls", v6=True),
    S("in_tls_no_shared_cipher"), S("in_tls_bad_protocol", v6=True, option="tlsv1"),
    S("in_tls_bad_protocol", option="tlsv1_1"), S("in_drop_plain"),
    S("in_reject_rcpt"), S("in_reject_rcpt", v6=True, tls=True), S("in_relay_denied"), S("in_relay_denied", tls=True),
    S("in_sub_plain_reject"), S("in_sub_tls", v6=True),
    S("in_msa_auth_ok", option="PLAIN"), S("in_msa_auth_fail", v6=True, option="LOGIN"),
    S("in_smtps_auth_ok", v6=True, option="LOGIN"), S("in_smtps_auth_fail", option="PLAIN"),
    S("in_smtps_plain_client"),
    _relay("tls.example", tls=True), _relay("tls6.example", v6=True), _relay("plain.example"),
    _relay("plain6.example", v6=True, tls=True), _relay("verify.example", tls=True), _relay("tls12.example"),
    _relay("aes128.example"), _relay("anon.example"), _relay("selfsigned.example", v6=True),
    _relay("badverify.example"), _relay("adh.example", tls=True), _relay("ecdsa.example"),
    _relay("mismatch.example"), _relay("encrypt.example", v6=True), _relay("dead.example"),
]
LOGLEVEL0 = [
    S("in_plain"), S("in_starttls"), S("in_starttls", v6=True),
    S("in_tls12_cipher", option="ECDHE-RSA-AES256-GCM-SHA384"),
    S("in_ccert_trusted"), S("in_ccert_untrusted", v6=True), S("in_drop_after_tls"), S("in_garbage_after_starttls"),
    S("in_tls_no_shared_cipher", v6=True), S("in_reject_rcpt", tls=True), S("in_sub_plain_reject"),
    S("in_msa_auth_ok", option="PLAIN"), S("in_smtps_auth_ok", v6=True, option="LOGIN"), S("in_smtps_plain_client"),
    _relay("tls.example"), _relay("tls6.example", v6=True, tls=True), _relay("plain.example"),
    _relay("verify.example"), _relay("adh.example"), _relay("selfsigned.example"), _relay("badverify.example"),
    _relay("mismatch.example"), _relay("encrypt.example"), _relay("dead.example"),
]


@dataclass(frozen=True)
class RunSpec:
    name: str
    base_port: int  # far from realpostfix's default 20025
    tls_loglevel: int
    scenarios: list[Scenario]


RUNS = {spec.name: spec for spec in (RunSpec("loglevel1", 21025, 1, LOGLEVEL1),
                                     RunSpec("loglevel0", 21125, 0, LOGLEVEL0))}


@dataclass
class RunResult:
    """One finished run: where its files are, its truth rows, and harness-side problems (if any)."""

    name: str
    directory: Path
    rows: list[dict[str, Any]]
    info: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def maillog(self) -> Path:
        return self.directory / "maillog"

    @property
    def truth(self) -> Path:
        return self.directory / "truth.jsonl"


def run_all(out: Path, names: list[str] | None = None) -> list[RunResult]:
    """Install what is missing, make the PKI, and do the runs one after another, each in its own instance."""
    started = time.monotonic()
    installed = ensure_packages()
    workroot = Path(tempfile.mkdtemp(prefix="tlslog-e2e."))
    workroot.chmod(0o755)  # the postfix user must reach the queue, certificates and maillog
    try:
        pki = make_pki(workroot / "pki")
        results = [run_one(RUNS[name], pki, workroot, out / name) for name in names or list(RUNS)]
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    for result in results:
        result.info.update(installed_packages=" ".join(installed) or "none",
                           harness_seconds_total=round(time.monotonic() - started, 1))
        _write_info(result)
    return results


def run_one(spec: RunSpec, pki: Pki, workroot: Path, out: Path) -> RunResult:
    started = time.monotonic()
    pf = PostfixInstance(workroot / spec.name, pki, spec.base_port, spec.tls_loglevel)
    with pf:
        driver = Driver(pf, spec.name)
        rows = driver.run(spec.scenarios)
        deferred_left = _settle(pf, rows)
    out.mkdir(parents=True, exist_ok=True)
    # the only machine path Postfix logs is the configuration directory ("daemon started ... configuration")
    (out / "maillog").write_text(pf.maillog.read_text(errors="replace").replace(str(workroot), "<workdir>"))
    join(rows, out / "maillog")
    write_jsonl(rows, out / "truth.jsonl")
    info = {**versions(pf.config_dir), "run": spec.name, "base_port": spec.base_port, "tls_loglevel": spec.tls_loglevel,
            "sessions": len(spec.scenarios), "truth_rows": len(rows), "deferred_left": deferred_left,
            "log_lines": len((out / "maillog").read_text().splitlines()),
            "seconds": round(time.monotonic() - started, 1)}
    return RunResult(spec.name, out, rows, info, observation_problems(rows))


def _settle(pf: PostfixInstance, rows: list[dict[str, Any]]) -> int:
    """Wait (bounded) until no mail waits for delivery and idle cached connections are closed.

    Returns the number of messages left deferred (on purpose: they stay until the instance is deleted).
    """
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while pf.busy() and time.monotonic() < deadline:
        time.sleep(0.1)
    cached = [r["end"] for r in rows if r["direction"] == "out" and ROUTES[r["dest_domain"]][0] == "smtp-cache"]
    if cached:
        idle = time.time() - dt.datetime.fromisoformat(max(cached)).timestamp()
        time.sleep(max(0.0, CACHE_TTL_SECONDS + 1 - idle))
    time.sleep(0.5)  # the last disconnect lines reach postlogd
    return sum(1 for path in (pf.queue_dir / "deferred").rglob("*") if path.is_file())


def versions(config_dir: Path) -> dict[str, str]:
    """Versions of everything that shaped the log."""
    def out(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
    return {"postfix_version": postfix_version(config_dir), "openssl": out("openssl", "version"),
            "swaks": out("dpkg-query", "-W", "-f=${Version}", "swaks"),
            "debian": Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "",
            "python": sys.version.split()[0]}


def _write_info(result: RunResult) -> None:
    (result.directory / "run-info.txt").write_text("".join(f"{k}={v}\n" for k, v in result.info.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True,
                        help="directory for <run>/maillog, truth.jsonl, run-info.txt")
    parser.add_argument("--run", choices=sorted(RUNS), action="append", help="only this run (repeatable)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("must run as root (it starts Postfix and may install Debian packages)")
    try:
        results = run_all(args.out, args.run)
    except Unavailable as e:
        print(f"real Postfix unavailable: {e}", file=sys.stderr)
        return 2
    for result in results:
        print(f"{result.name}: {result.info['truth_rows']} truth rows, {result.info['log_lines']} log lines, "
              f"{result.info['seconds']} s -> {result.directory}")
        for problem in result.problems:
            print(f"  harness problem: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
