"""Real Postfix runs with ground truth: which sessions each run drives, and running them end to end.

Each run is its own private instance on its own free block of loopback ports, and the runs go side by side
(threads). Default runs (the tests): ``loglevel1`` (``smtpd_tls_loglevel = smtp_tls_loglevel = 1``, most
scenarios, connection caching, SASL), ``loglevel0`` (both 0: verdicts only from the disconnect counters),
``loglevel2`` (both 2: OpenSSL state and certificate lines too) and ``mixed`` (one instance reloaded with
levels 0, 1, 0, 2, 0; ``segments.json`` says where each level starts in the maillog). Extra runs, never run by
the tests: ``loglevel3`` and ``loglevel4`` (a few sessions with hex dumps, for ``tests/data``). Each writes
``maillog``, ``truth.jsonl`` and ``run-info.txt`` into ``OUT/<run>/``.

Write fresh runs, e.g. to refresh a bundled sample (needs root on Debian, installs packages if missing)::

    python -m tests.e2e.harness --out DIR [--run NAME ...] [--sequential]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
LOGLEVEL2 = [  # a subset of loglevel1 at level 2 (OpenSSL state and certificate lines too), without caching
    S("in_plain", v6=True), S("in_starttls"),
    S("in_tls12_cipher", option="ECDHE-RSA-AES128-GCM-SHA256"),
    S("in_tls12_cipher", v6=True, option="AES256-GCM-SHA384"),
    S("in_tls13_suite", option="TLS_CHACHA20_POLY1305_SHA256"),
    S("in_ccert_none"), S("in_ccert_untrusted", v6=True), S("in_ccert_trusted"),
    S("in_quit_after_tls"), S("in_drop_after_tls"), S("in_garbage_after_starttls", v6=True),
    S("in_tls_no_shared_cipher"), S("in_tls_bad_protocol", option="tlsv1_1"),
    S("in_reject_rcpt", tls=True), S("in_sub_plain_reject"), S("in_sub_tls", v6=True),
    S("in_msa_auth_ok", option="PLAIN"), S("in_msa_auth_fail", v6=True, option="LOGIN"),
    S("in_smtps_auth_ok", v6=True, option="LOGIN"), S("in_smtps_auth_fail", option="PLAIN"),
    S("in_smtps_plain_client"),
    _relay("verify.example", tls=True), _relay("tls.example"), _relay("tls6.example", v6=True),
    _relay("selfsigned.example"), _relay("anon.example"), _relay("adh.example"), _relay("plain.example"),
    _relay("badverify.example"), _relay("mismatch.example"), _relay("encrypt.example", v6=True),
    _relay("dead.example"),
]
# One instance, its TLS log level changed by reloads: 0, 1, 0, 2, 0. Each segment relays over TLS (the
# client's STARTTLS leaves no trace at level 0) and in plaintext, takes STARTTLS (``tls=True`` relays too) and
# plaintext inbound, and has a failure the disconnect counters show (starttls=0/1). Implicit TLS (smtps) at
# levels 0, 1 and 2. No connection caching: a cached connection (and tlsproxy) would carry a delivery across
# a reload.
MIXED = [
    (0, [S("in_plain"), S("in_tls_no_shared_cipher"), S("in_smtps_auth_ok", option="PLAIN"),
         _relay("tls.example", tls=True), _relay("verify.example"), _relay("plain.example")]),
    (1, [S("in_plain", v6=True), S("in_garbage_after_starttls"), S("in_smtps_auth_ok", v6=True, option="LOGIN"),
         _relay("tls.example"), _relay("verify.example", tls=True), _relay("plain6.example", v6=True)]),
    (0, [S("in_starttls"), S("in_tls_no_shared_cipher", v6=True), _relay("tls6.example", v6=True, tls=True),
         _relay("tls.example"), _relay("plain.example"), _relay("mismatch.example")]),
    (2, [S("in_plain"), S("in_tls_no_shared_cipher"), S("in_smtps_auth_ok", option="LOGIN"),
         _relay("tls.example", tls=True), _relay("verify.example"), _relay("plain.example"),
         _relay("selfsigned.example")]),
    (0, [S("in_starttls", v6=True), S("in_garbage_after_starttls"), _relay("tls.example"),
         _relay("verify.example", tls=True), _relay("plain6.example", v6=True), _relay("tls6.example", v6=True)]),
]
# Small logs of the verbose levels (hex dumps of the handshake at 3, of everything after STARTTLS at 4),
# kept as tests/data/tls-loglevel{3,4}.maillog: in and out, success and failure. Not run by the tests.
VERBOSE = [S("in_plain"), S("in_starttls"), S("in_tls_no_shared_cipher"), _relay("tls.example", tls=True),
           _relay("plain.example"), _relay("mismatch.example")]


@dataclass(frozen=True)
class RunSpec:
    """One run: one private instance, its TLS log level segments in order, and whether the tests run it."""

    name: str
    segments: list[tuple[int, list[Scenario]]]  # (smtpd_tls_loglevel = smtp_tls_loglevel, sessions)
    default: bool = True

    @property
    def tls_loglevel(self) -> int:
        return self.segments[0][0]

    @property
    def scenarios(self) -> list[Scenario]:
        return [scenario for _, scenarios in self.segments for scenario in scenarios]

    @property
    def mixed(self) -> bool:
        return len(self.segments) > 1


RUNS = {spec.name: spec for spec in (
    RunSpec("loglevel1", [(1, LOGLEVEL1)]),
    RunSpec("loglevel0", [(0, LOGLEVEL0)]),
    RunSpec("loglevel2", [(2, LOGLEVEL2)]),
    RunSpec("mixed", MIXED),
    RunSpec("loglevel3", [(3, VERBOSE)], default=False),
    RunSpec("loglevel4", [(4, VERBOSE)], default=False),
)}
DEFAULT_RUNS = [name for name, spec in RUNS.items() if spec.default]


@dataclass
class RunResult:
    """One finished run: where its files are, its truth rows, and harness-side problems (if any)."""

    name: str
    directory: Path
    rows: list[dict[str, Any]]
    info: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def maillog(self) -> Path:
        return self.directory / "maillog"

    @property
    def truth(self) -> Path:
        return self.directory / "truth.jsonl"


def run_all(out: Path, names: list[str] | None = None, parallel: bool = True,
            on_done: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """Install what is missing, make the PKI, and do the runs, each in its own instance, side by side.

    The instances share nothing but the PKI (own ports, queue, log), so they run in threads at once; each
    one's sessions still run one after another. ``parallel=False`` runs them one after another.
    ``on_done(result)`` is called in the run's thread as soon as its files are written (while other runs
    may still go on), e.g. to analyse its maillog early.
    """
    started = time.monotonic()
    installed = ensure_packages()
    workroot = Path(tempfile.mkdtemp(prefix="tlslog-e2e."))
    workroot.chmod(0o755)  # the postfix user must reach the queue, certificates and maillog
    names = names or DEFAULT_RUNS
    try:
        pki = make_pki(workroot / "pki")

        def one(name: str) -> RunResult:
            result = run_one(RUNS[name], pki, workroot, out / name)
            _write_info(result)
            if on_done is not None:
                on_done(result)
            return result

        if parallel and len(names) > 1:
            with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="e2e-run") as pool:
                futures = [pool.submit(one, name) for name in names]
                results = [future.result() for future in futures]
        else:
            results = [one(name) for name in names]
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    for result in results:
        result.info.update(installed_packages=" ".join(installed) or "none",
                           harness_seconds_total=round(time.monotonic() - started, 1))
        _write_info(result)
    return results


def run_one(spec: RunSpec, pki: Pki, workroot: Path, out: Path) -> RunResult:
    started = time.monotonic()
    pf = PostfixInstance(workroot / spec.name, pki, spec.tls_loglevel)
    with pf:
        driver = Driver(pf, spec.name)
        for index, (level, scenarios) in enumerate(spec.segments):
            if index:
                pf.set_tls_loglevel(level)
            driver.run(scenarios)
        rows = driver.rows
        deferred_left = _settle(pf, rows)
    out.mkdir(parents=True, exist_ok=True)
    # the only machine path Postfix logs is the configuration directory ("daemon started ... configuration")
    (out / "maillog").write_text(pf.maillog.read_text(errors="replace").replace(str(workroot), "<workdir>"))
    join(rows, out / "maillog")
    write_jsonl(rows, out / "truth.jsonl")
    lines = (out / "maillog").read_text().splitlines()
    problems = observation_problems(rows)
    segments: list[dict[str, Any]] = []
    if spec.mixed:
        segments, segment_problems = split_segments(spec, rows, lines)
        problems += segment_problems
        _write_segments(out / SEGMENTS_FILE, spec.name, segments)
    info: dict[str, Any] = {
        **versions(pf.config_dir), "run": spec.name, "base_port": pf.ports.base, "start_attempts": pf.start_attempts,
        "tls_loglevel": ",".join(str(level) for level, _ in spec.segments),
        "sessions": len(spec.scenarios), "truth_rows": len(rows), "deferred_left": deferred_left,
        "log_lines": len(lines)}
    if segments:
        info["reload_lines"] = ",".join(str(s["reload_line"]) for s in segments[1:])
        info["segments"] = " ".join(f"{s['tls_loglevel']}:{s['first_line']}-{s['last_line']}" for s in segments)
    info["seconds"] = round(time.monotonic() - started, 1)
    return RunResult(spec.name, out, rows, info, problems, segments)


SEGMENTS_FILE = "segments.json"
RELOAD_LINE = re.compile(r" postfix/master\[\d+\]: reload -- version ")
QUEUE_ID_AT_START = re.compile(r"\]: ([0-9A-Za-z]+): ")
TLS_SUMMARY = re.compile(r"\]: (?:Anonymous|Untrusted|Trusted|Verified) TLS connection (?:established|reused) ")
TLS_PROCESS = re.compile(r" (\S+/(?:smtpd|smtp|tlsproxy)\[\d+\]): ")  # the daemons that read the TLS log levels
LEVEL2_ONLY = re.compile(r"\]: (?:SSL_accept|SSL_connect):")  # OpenSSL state lines: level 2 and up


def split_segments(spec: RunSpec, rows: list[dict[str, Any]],
                   lines: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Segments of a mixed run's maillog, cut at the master's ``reload`` lines, and what contradicts them.

    Segment k > 0 starts at the k-th reload line (1-based line numbers, inclusive). Checked against the log
    (harness problems, not tlslog's): one reload per level change; every line of every queued message of a
    truth row falls inside the segment of that row's ``tls_loglevel``; no smtpd, smtp or tlsproxy process
    logs in two segments; TLS summary lines occur only in segments at level >= 1 (and in each of them),
    OpenSSL state lines only at level >= 2.
    """
    reload_lines = [n for n, line in enumerate(lines, 1) if RELOAD_LINE.search(line)]
    levels = [level for level, _ in spec.segments]
    problems: list[str] = []
    if len(reload_lines) != len(levels) - 1:
        return [], [f"{len(reload_lines)} reload lines in the maillog, expected {len(levels) - 1}"]
    starts = [1, *reload_lines]
    ends = [n - 1 for n in reload_lines] + [len(lines)]
    segments = [{"index": k, "tls_loglevel": level, "first_line": first, "last_line": last,
                 "reload_line": first if k else None, "sessions": len(spec.segments[k][1])}
                for k, (level, first, last) in enumerate(zip(levels, starts, ends))]

    def segment_of(n: int) -> int:
        return next(k for k, s in enumerate(segments) if s["first_line"] <= n <= s["last_line"])

    line_segments: dict[str, set[int]] = {}
    process_segments: dict[str, set[int]] = {}
    for n, line in enumerate(lines, 1):
        if m := QUEUE_ID_AT_START.search(line):
            line_segments.setdefault(m.group(1), set()).add(segment_of(n))
        if m := TLS_PROCESS.search(line):
            process_segments.setdefault(m.group(1), set()).add(segment_of(n))
    problems += [f"process {process} logged in segments {sorted(where)}" for process, where in
                 process_segments.items() if len(where) > 1]
    for row in rows:
        for queue_id in {row.get("log_queue_id"), row.get("log_sink_queue_id")} - {None}:
            seen = {segments[k]["tls_loglevel"] for k in line_segments.get(queue_id, set())}
            where = sorted(line_segments.get(queue_id, set()))
            if seen != {row["tls_loglevel"]} or len(where) != 1:
                problems.append(f"{row['id']}: queue id {queue_id} logged in segments {where} (levels "
                                f"{sorted(seen)}), truth says level {row['tls_loglevel']}")
    for s in segments:
        body = lines[s["first_line"] - 1:s["last_line"]]
        summaries = sum(1 for line in body if TLS_SUMMARY.search(line))
        states = sum(1 for line in body if LEVEL2_ONLY.search(line))
        if (summaries > 0) != (s["tls_loglevel"] >= 1) or (states > 0) != (s["tls_loglevel"] >= 2):
            problems.append(f"segment {s['index']} (level {s['tls_loglevel']}, lines {s['first_line']}-"
                            f"{s['last_line']}): {summaries} TLS summary lines, {states} OpenSSL state lines")
        s.update(tls_summary_lines=summaries)
    return segments, problems


def _write_segments(path: Path, run: str, segments: list[dict[str, Any]]) -> None:
    """``segments.json``: the run, the reload line numbers, and one segment per line."""
    reloads = [s["reload_line"] for s in segments[1:]]
    body = ",\n".join(f"  {json.dumps(s)}" for s in segments)
    path.write_text(f'{{"run": {json.dumps(run)}, "reload_lines": {json.dumps(reloads)}, "segments": [\n{body}\n]}}\n')


def _settle(pf: PostfixInstance, rows: list[dict[str, Any]]) -> int:
    """Wait (bounded) until no mail waits for delivery, idle cached connections are closed and logged.

    Returns the number of messages left deferred (on purpose: they stay until the instance is deleted).
    """
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while pf.busy() and time.monotonic() < deadline:
        time.sleep(0.1)
    cached = [r["end"] for r in rows if r["direction"] == "out" and ROUTES[r["dest_domain"]][0] == "smtp-cache"]
    if cached:
        idle = time.time() - dt.datetime.fromisoformat(max(cached)).timestamp()
        time.sleep(max(0.0, CACHE_TTL_SECONDS + 1 - idle))
    pf.wait_idle()  # every smtpd session logged its disconnect (a cached connection's only when it closes)
    time.sleep(0.1)  # lines written after those (e.g. tlsproxy's DISCONNECT) reach postlogd
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
                        help="directory for <run>/maillog, truth.jsonl, run-info.txt (and segments.json)")
    parser.add_argument("--run", choices=list(RUNS), action="append",
                        help=f"only this run (repeatable; default: {' '.join(DEFAULT_RUNS)})")
    parser.add_argument("--sequential", action="store_true", help="one run after another instead of side by side")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("must run as root (it starts Postfix and may install Debian packages)")
    try:
        results = run_all(args.out, args.run, parallel=not args.sequential)
    except Unavailable as e:
        print(f"real Postfix unavailable: {e}", file=sys.stderr)
        return 2
    for result in results:
        print(f"{result.name}: {result.info['truth_rows']} truth rows, {result.info['log_lines']} log lines, "
              f"ports {result.info['base_port']}+, {result.info['seconds']} s -> {result.directory}")
        if result.segments:
            print(f"  segments (level:lines): {result.info['segments']}")
        for problem in result.problems:
            print(f"  harness problem: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
