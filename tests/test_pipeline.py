"""The hot loop (`scan`) reads every line exactly as the plain reference path does.

`describe_line` splits a line with the prefix rules and parses it with the full rule sets; the
hot loop takes shortcuts (a line that starts like the previous one is matched from its tag on,
compiled rules are dispatched inline, postscreen is counted without parsing). Both must agree
on the accounting of every line, in any order, and the fold must receive exactly the fields
pyparsing reads from each line (the differential test of the production path).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tlslog.accounting import LineStats
from tlslog.engine.plan import Task
from tlslog.engine.scan import POSTFIX_PROGRAMS, describe_line, scan
from tlslog.events import FIELDS, INBOUND_KINDS, KINDS, OUTBOUND_KINDS
from tlslog.fold import ChunkFold
from tlslog.grammars import PROGRAMS, UNKNOWN_PROGRAM, tls
from tlslog.lines import LineSplitter
from tlslog.parse import parse_with_pyparsing
from tlslog.timestamps import YearClock

from .conftest import DATA, ROOT, SAMPLES, tlslog

PIPELINE_PROGRAMS = ("smtpd", "smtp", "tlsproxy")
DETAIL = frozenset(getattr(tls, "DETAIL_NAMES", ()))


def reference_stats(lines: list[str]) -> LineStats:
    stats = LineStats(read=len(lines))
    previous = None
    for line in lines:
        stats.duplicate += line == previous
        previous = line
        record, found = describe_line(line)
        if record is None:
            stats.unrecognized += 1
            continue
        program = record.tag.rsplit("/", 1)[-1]
        if program in PIPELINE_PROGRAMS or record.tag == "postfix":
            stats.postfix += 1
            if found is None:
                stats.unparsed += 1
            else:
                stats.parsed += 1
                stats.tls_detail += found[0] in DETAIL
        elif program in POSTFIX_PROGRAMS or record.tag.startswith("postfix"):
            stats.postfix += 1
        else:
            stats.other += 1
    return stats


def hot_stats(lines: list[str]) -> LineStats:
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    return scan(Task(0, "log", 2026, None, data=data, columns=())).stats


def _corpus() -> list[str]:
    lines = [e["line"] for e in json.loads((DATA / "expected_lines.json").read_text(encoding="utf-8"))]
    for path in sorted((SAMPLES / "realpostfix").glob("*/maillog")):
        lines += path.read_text(encoding="utf-8").splitlines()[:300]
    return [line for line in lines if "\n" not in line]


CORPUS = _corpus()


def test_corpus_in_order():
    assert hot_stats(CORPUS) == reference_stats(CORPUS)


def test_each_line_alone():
    for line in CORPUS[:400]:
        assert hot_stats([line]) == reference_stats([line]), line


@st.composite
def shuffled_with_variants(draw) -> list[str]:
    picks = draw(st.lists(st.sampled_from(CORPUS), min_size=1, max_size=40))
    out = []
    for line in picks:
        variant = draw(st.sampled_from(["same", "cut", "garbage-tag", "other-host"]))
        if variant == "cut":
            line = line[: draw(st.integers(0, len(line)))]
        elif variant == "garbage-tag" and " postfix/" in line:
            line = line.replace(" postfix/", " post fix/", 1)
        elif variant == "other-host" and line[:1].isupper():
            line = line.replace(" mx ", " mx2 ", 1)
        out.append(line)
    return out


@settings(max_examples=150, deadline=None)
@given(shuffled_with_variants())
def test_any_order_and_damage(lines):
    assert hot_stats(lines) == reference_stats(lines)


def test_same_json_whatever_the_number_of_workers():
    log = str(SAMPLES / "synthetic" / "maillog.gz")
    small = {"TLSLOG_CHUNK_SIZE": "65536"}  # ~40 chunks: sessions cut at chunk edges everywhere
    one = tlslog("report", log, "--format", "json", "--jobs", "1").stdout
    for jobs in ("1", "2", "3"):
        assert tlslog("report", log, "--format", "json", "--jobs", jobs, env=small).stdout == one
    one = tlslog("sessions", log, "--format", "jsonl", "--jobs", "1").stdout
    assert tlslog("sessions", log, "--format", "jsonl", "--jobs", "2", env=small).stdout == one


# -- the fields the fold receives ---------------------------------------------------------------

def _role(program: str, tag: str, kind: str, fields: dict) -> str | None:
    if program == "smtpd":
        return "in"
    if program == "smtp":
        return "out"
    if tag != "postfix":
        return None  # tlsproxy: recognised, not folded
    if kind in INBOUND_KINDS:
        return "in"
    if kind in OUTBOUND_KINDS:
        return "out"
    if kind in ("tls_summary", "ssl_error"):
        return "in" if fields["direction"] == "from" else "out"
    return None


def reference_events(lines: list[str]) -> list[tuple]:
    """(line, role, rule, fields) of every line the fold must receive, read with pyparsing only
    (prefix split aside, which test_lowering checks on its own)."""
    events, previous = [], None
    handlers = ChunkFold()
    for number, line in enumerate(lines):
        repeated, previous = line == previous, line
        record = LineSplitter(YearClock(2026)).split(line)
        if record is None or repeated:
            continue
        program = record.tag.rsplit("/", 1)[-1]
        rules = PROGRAMS.get(program) if program in PIPELINE_PROGRAMS else UNKNOWN_PROGRAM if record.tag == "postfix" else None
        found = parse_with_pyparsing(rules, record.message) if rules else None
        if found is None or found[0] not in FIELDS:
            continue
        kind, fields = found
        role = _role(program, record.tag, kind, fields)
        if role is not None and handlers.handler(role, kind) is not None:
            events.append((number, role, kind, tuple(fields[name] for name in FIELDS[kind])))
    return events


def hot_events(lines: list[str]) -> list[tuple]:
    """The same, as the production hot path hands them to the fold (typed tuples)."""
    seen: list[tuple] = []

    def record(self, handler, reset, settled, role, kind, wall, offset, line, key, values):  # noqa: ANN001
        assert type(values) is KINDS[kind]
        seen.append((line, role, kind, tuple(values)))

    def feed(self, role, kind, wall, offset, line, key, values):  # noqa: ANN001
        if self.handler(role, kind) is not None:
            assert type(values) is KINDS[kind]
            seen.append((line, role, kind, tuple(values)))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ChunkFold, "feed_resolved", record)
        patch.setattr(ChunkFold, "feed", feed)
        hot_stats(lines)
    return sorted(seen)


def _anchor_lines() -> list[str]:
    """The anchor corpus as log lines: its bare messages get a syslog prefix and the tag of the
    program their source names (``…/smtpd_0004.yaml`` -> ``postfix/smtpd``)."""
    lines = []
    for number, entry in enumerate((DATA / "anchor_lines.txt").read_text(encoding="utf-8").splitlines()):
        source, _, text = entry.partition("\t")
        if LineSplitter(YearClock(2026)).split(text) is not None:
            lines.append(text)
            continue
        name = source.rsplit("/", 1)[-1]
        program = next((p for p in ("tlsproxy", "postscreen", "smtpd", "smtp") if p in name), "smtp")
        lines.append(f"Jan  1 00:{number // 60:02d}:{number % 60:02d} mx postfix/{program}[{1000 + number}]: {text}")
    return lines


def _field_corpus() -> list[str]:
    lines = list(CORPUS)
    for path in sorted((SAMPLES / "realpostfix").glob("*/maillog")):
        lines += path.read_text(encoding="utf-8").splitlines()
    lines += _anchor_lines()
    for name in ("tls-loglevel3.maillog", "tls-loglevel4.maillog"):
        if (DATA / name).exists():
            lines += (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if "\n" not in line]


#: Events of `_field_corpus` (the anchor corpus gives 51 of them); it moves when the corpus or
#: the grammar's event kinds do.
EXPECTED_EVENTS = 5744


def test_fold_events_equal_pyparsing_on_every_corpus_line():
    lines = _field_corpus()
    expected = reference_events(lines)
    # 1423 connect, 1414 disconnect, 1107 client, 811 TLS summary, 491 status lines, ...
    assert len(expected) == EXPECTED_EVENTS
    assert hot_events(lines) == expected


@settings(max_examples=60, deadline=None)
@given(shuffled_with_variants())
def test_fold_events_equal_pyparsing_on_generated_lines(lines):
    assert hot_events(lines) == reference_events(lines)


EXTERNAL = ROOT.parent / "shared" / "corpus" / "external"


@pytest.mark.slow
def test_fold_events_equal_pyparsing_on_the_external_corpus():
    """Every line of the public logs other projects ship (``../shared/corpus/external``)."""
    if not EXTERNAL.is_dir():
        pytest.skip(f"the external corpus is not beside the repository ({EXTERNAL})")
    import gzip

    lines: list[str] = []
    for path in sorted(p for p in EXTERNAL.rglob("*") if p.is_file() and p.suffix not in (".yaml", ".md", ".args", ".index")):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        lines += data.decode("utf-8", "replace").replace("\r", "").split("\n")
    expected = reference_events(lines)
    assert len(expected) > 50_000  # the public MX logs: a floor, the equality below is the test
    assert hot_events(lines) == expected
