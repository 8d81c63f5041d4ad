"""The compiled core against its definition: the same kept lines, and the same session tables.

`tlslog.engine.prefilter.reference` defines the prefilter through the grammar's lowered
classic prefix rule; the compiled ``tlslog._linescan`` must give exactly its result, on every
sample and corpus input and on crafted lines around every byte-level decision it makes. Then
the whole engine is run both ways (compiled core, pure Python) on the same inputs: the session
tables, the evidence and the line accounting must be identical.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlslog.analysis import Options, analyze
from tlslog.engine import prefilter, scan
from tlslog.lines import MAX_LINE

from .conftest import DATA, ROOT, SAMPLES

EXTERNAL = ROOT.parent / "shared" / "corpus" / "external"

needs_compiled = pytest.mark.skipif(
    prefilter.compiled is None and not os.environ.get("TLSLOG_COMPILED_REQUIRED"),
    reason="the compiled core is not built here (no C compiler at install time, or TLSLOG_PURE_PYTHON)",
)


def _reference(data: bytes, previous: bytes | None = None) -> tuple | None:
    return prefilter.reference(data, previous, scan._prefilter_kind, scan._prefilter_decide(), MAX_LINE)


def _compiled(data: bytes, previous: bytes | None = None, decide=None) -> tuple | None:
    assert prefilter.compiled is not None, "TLSLOG_COMPILED_REQUIRED is set but the compiled core is not built"
    return prefilter.compiled(data, previous, scan._prefilter_kind, decide or scan._prefilter_decide(), MAX_LINE)


def _inputs() -> list[Path]:
    """Every sample log, and the external corpus when it is beside the repository."""
    found = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and "maillog" in p.name or p.suffix in (".log", ".gz"))
    if EXTERNAL.is_dir():
        found += sorted(p for p in EXTERNAL.rglob("*") if p.is_file() and p.suffix not in (".yaml", ".md", ".args", ".index"))
    return found


def _bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


INPUTS = _inputs()


@needs_compiled
def test_compiled_prefilter_equals_its_definition_on_every_input():
    kept = 0
    for path in INPUTS:
        data = _bytes(path)
        expected = _reference(data)
        assert _compiled(data) == expected, path
        kept += 0 if expected is None else len(expected[0])
    assert kept > 1000  # a floor on what was compared; the equality above is the test


def test_what_is_dropped_and_counted():
    data = (b"Jun  4 11:52:07 mx1 postfix/qmgr[3]: 4A: removed\n"
            b"Jun  4 11:52:07 mx1 postfix/smtpd[9]: connect from a[192.0.2.1]\n"
            b"Jun  4 11:52:07 mx1 postfix/smtpd[9]: connect from a[192.0.2.1]\r\n"
            b"Jun 04 11:52:08.25 mx1 dovecot: imap-login: Login\n"
            b"2026-06-04T11:52:07+02:00 mx1 postfix/qmgr[3]: 4A: removed\n"
            b"\n")
    expected = (["Jun  4 11:52:07 mx1 postfix/smtpd[9]: connect from a[192.0.2.1]",
                 "Jun  4 11:52:07 mx1 postfix/smtpd[9]: connect from a[192.0.2.1]",
                 "2026-06-04T11:52:07+02:00 mx1 postfix/qmgr[3]: 4A: removed", ""],
                [2, 5, 8, 10], 6, 1, 1, 1)
    assert _reference(data) == expected
    if prefilter.compiled is not None:
        assert _compiled(data) == expected


def test_invalid_utf8_is_left_to_the_plain_reading():
    assert _reference(b"Jun  4 11:52:07 mx1 dovecot: \xff\n") is None
    assert _reference(b"Jun  4 11:52:07 mx1 dovecot: x\n", b"\xfe") is None
    if prefilter.compiled is not None:
        assert _compiled(b"Jun  4 11:52:07 mx1 dovecot: \xff\n") is None
        assert _compiled(b"Jun  4 11:52:07 mx1 dovecot: x\n", b"\xfe") is None


#: Pieces that sit on the byte-level decisions of the compiled scanner.
_PIECES = ["Jun", "Jux", " ", "  ", "4", "04", "34", " 4", "11:52:07", "29:61:60", "11:52:07.", "11:52:07.5",
           "mx1", "m[x", "m]x", "\t", "postfix/qmgr", "postfix/smtpd", "dovecot", "postfix/master", "postfix",
           "opendkim", ":", "::", ": ", "[", "]", "[1]", "[]", "[1", "é", "\u00a0", "\u2028", "\x1c", "\x01", "\x7f",
           "\x85", "\r", "x" * 70, "postfix/" + "p" * 60, "amavis"]


@st.composite
def classic_like(draw) -> bytes:
    """Lines that are, or nearly are, classic lines of a counted or a kept program."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        month = draw(st.sampled_from(["Jun", "Dec", "Jux", "jun"]))
        day = draw(st.sampled_from([" 4", "4", "04", "34", "  4", "31"]))
        clock = draw(st.sampled_from(["11:52:07", "11:52:07.123", "11:52:07.", "29:59:59", "1:52:07"]))
        host = draw(st.sampled_from(["mx1", "mx.example.com", "m[x", "mé", "m\x01x", ""]))
        tag = "".join(draw(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=4)))
        pid = draw(st.sampled_from(["[123]", "", "[]", "[1", "[a]b]", "[é]"]))
        sep = draw(st.sampled_from([": ", ":", " : ", ":  "]))
        line = f"{month} {day} {clock} {host} {tag}{pid}{sep}message"
        for _ in range(draw(st.integers(0, 2))):
            where = draw(st.integers(0, len(line)))
            line = line[:where] + draw(st.sampled_from(_PIECES)) + line[where + draw(st.integers(0, 2)):]
        lines.append(line)
        if draw(st.booleans()):
            lines.append(line)  # a repeat
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n", "\n\n"]))
    return text.encode("utf-8")


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(classic_like(), st.sampled_from([None, b"", b"Jun  4 11:52:07 mx1 postfix/qmgr[3]: message"]))
def test_compiled_prefilter_equals_its_definition_on_crafted_lines(data, previous):
    assert _compiled(data, previous) == _reference(data, previous)


@needs_compiled
def test_overlong_lines_are_kept_for_the_scan():
    long_line = b"Jun  4 11:52:07 mx1 postfix/qmgr[3]: " + "é".encode() * (MAX_LINE // 2)
    assert _compiled(long_line + b"\n") == _reference(long_line + b"\n")
    assert len(_compiled(long_line)[0]) == 1  # type: ignore[index]


def _analysis(paths: list[Path], monkeypatch: pytest.MonkeyPatch, compiled: bool, chunk_size: int) -> tuple:
    if not compiled:
        monkeypatch.setattr(prefilter, "compiled", None)
    result = analyze([str(p) for p in paths], Options(jobs=1, year=2026, chunk_size=chunk_size))
    monkeypatch.undo()
    return result.sessions, list(result.evidence), result.stats, result.source_stats


@needs_compiled
@pytest.mark.parametrize("group", ["samples", pytest.param("external", marks=pytest.mark.slow)])
def test_both_paths_give_the_same_session_table(group, monkeypatch):
    """Small chunks for the samples, so that chunk edges (a line repeated across one) fall everywhere."""
    if group == "external" and not EXTERNAL.is_dir():
        pytest.skip(f"the external corpus is not beside the repository ({EXTERNAL})")
    paths = [p for p in INPUTS if (EXTERNAL in p.parents) == (group == "external")
             and p.name != "month.log.gz"]  # the month: too slow in 64 KiB chunks; the prefilter test has it
    chunk_size = 1 << 16 if group == "samples" else 1 << 22
    fast = _analysis(paths, monkeypatch, True, chunk_size)
    plain = _analysis(paths, monkeypatch, False, chunk_size)
    pd.testing.assert_frame_equal(fast[0], plain[0])
    assert fast[1:] == plain[1:]
    assert len(fast[0]) > 100


@pytest.mark.slow
def test_an_install_without_a_c_compiler_works_and_reports_the_same(tmp_path):
    """The README's install on a machine without a compiler: the build leaves the compiled core
    out (``optional=True`` in setup.py), and that installation prints the same report."""
    import json
    import subprocess
    import sys
    import zipfile

    env = {**os.environ, "CC": "/bin/false", "PIP_NO_INDEX": "1"}
    env.pop("TLSLOG_PURE_PYTHON", None)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "wheel"), str(ROOT)], env=env, check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("tlslog-*.whl")
    assert [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".so")] == []
    # A new environment holding that wheel, which borrows this one's dependencies through a
    # .pth line (whose own .pth files, among them this checkout's editable install, are not run).
    import sysconfig
    import venv

    venv.create(tmp_path / "env", with_pip=False)
    python = tmp_path / "env" / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, str(wheel)],
                   env=env, check=True, capture_output=True)
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = "import tlslog, tlslog.engine.prefilter as p; print(tlslog.__file__); print(p.compiled)"
    where = subprocess.run([str(python), "-c", probe], env=env, capture_output=True, text=True, check=True,
                           cwd=tmp_path).stdout.split("\n")
    assert where[0].startswith(site) and where[1] == "None"
    sample = SAMPLES / "synthetic" / "month.log.gz"
    args = ["-m", "tlslog", "report", str(sample), "--year", "2026", "--format", "json"]
    plain = subprocess.run([str(python), *args], env=env, capture_output=True, text=True, check=True,
                           cwd=tmp_path).stdout
    here = subprocess.run([sys.executable, *args], env={k: v for k, v in env.items() if k != "CC"},
                          capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert json.loads(plain) == json.loads(here)
