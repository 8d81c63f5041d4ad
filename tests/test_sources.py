"""Inputs: stdin, plain and compressed files, rotated logs in order, damaged files."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import zlib
from pathlib import Path

import pytest

from tlslog.errors import DamagedInput
from tlslog.analysis import Options, analyze
from tlslog.sources import Source, read_blocks, resolve, rotation_order

from .conftest import SAMPLES, import_or_skip, maillogs, tlslog

LOG = SAMPLES / "realpostfix" / "default" / "maillog"


@pytest.mark.parametrize(("given", "expected"), [
    (["maillog", "maillog.1", "maillog.2.gz"], ["maillog.2.gz", "maillog.1", "maillog"]),
    (["maillog.10.gz", "maillog.9.gz", "maillog"], ["maillog.10.gz", "maillog.9.gz", "maillog"]),
    (["maillog", "maillog-20261122.gz", "maillog-20261115.gz"],
     ["maillog-20261115.gz", "maillog-20261122.gz", "maillog"]),
    (["b.log", "a.log"], ["b.log", "a.log"]),  # unrelated files keep the order given
    (["/var/log/mail.log.1", "/var/log/mail.log", "/other/mail.log.1"],
     ["/var/log/mail.log.1", "/var/log/mail.log", "/other/mail.log.1"]),
])
def test_rotation_order(given, expected):
    assert rotation_order(given) == expected


def _report(*args: str, stdin: bytes | None = None) -> tuple[dict, int]:
    run = tlslog("report", "--format", "json", *args, stdin=stdin)
    return json.loads(run.stdout), run.code


@pytest.fixture(scope="module")
def plain_report() -> dict:
    return _report(str(LOG))[0]


@pytest.mark.parametrize("opener", [gzip.open, bz2.open, lzma.open], ids=["gzip", "bzip2", "xz"])
def test_compressed_files_give_the_same_report(tmp_path, opener, plain_report):
    path = tmp_path / "maillog.1.z"  # compression is told by content, not by name
    with opener(path, "wb") as handle:
        handle.write(LOG.read_bytes())
    report, code = _report(str(path))
    assert code == 0
    assert report == plain_report


def test_stdin_gives_the_same_report(plain_report):
    for args in ([], ["-"]):
        report, code = _report(*args, stdin=LOG.read_bytes())
        assert code == 0 and report == plain_report


def test_split_rotated_files_give_the_same_report(tmp_path, plain_report):
    lines = LOG.read_bytes().splitlines(keepends=True)
    third = len(lines) // 3
    with gzip.open(tmp_path / "maillog.2.gz", "wb") as handle:
        handle.writelines(lines[:third])
    (tmp_path / "maillog.1").write_bytes(b"".join(lines[third : 2 * third]))
    (tmp_path / "maillog").write_bytes(b"".join(lines[2 * third :]))
    report, code = _report(str(tmp_path / "maillog*"))
    assert code == 0
    assert report.pop("inputs") == {"read": 3, "skipped": 0, "damaged": 0, "problems": []}
    assert report == {k: v for k, v in plain_report.items() if k != "inputs"}


def test_concatenated_gzip_members(tmp_path, plain_report):
    data = LOG.read_bytes()
    half = data.index(b"\n", len(data) // 2) + 1
    (tmp_path / "log.gz").write_bytes(gzip.compress(data[:half]) + gzip.compress(data[half:]))
    assert _report(str(tmp_path / "log.gz"))[0] == plain_report


def test_truncated_gzip_uses_what_was_read(tmp_path):
    blob = gzip.compress(LOG.read_bytes() * 20)
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    source = resolve([str(path)])[0][0]
    assert source.compression == "gzip"
    read = b""
    with pytest.raises(DamagedInput):
        for block in read_blocks(source, 4096):
            read += block
    # exactly what zlib inflates from the first half (about ten of the twenty copies: 2,484,792 bytes)
    assert read == zlib.decompressobj(wbits=31).decompress(blob[: len(blob) // 2])
    assert LOG.read_bytes() * 20 != read and (LOG.read_bytes() * 20).startswith(read)
    analysis = analyze([str(path)], Options(jobs=1))
    assert [str(e) for e in analysis.errors] == [f"{path}: gzip data ends early (file truncated?)"]
    assert not read.endswith(b"\n")  # the cut falls inside a line: its piece is read as one more line
    assert analysis.stats.read == read.count(b"\n") + 1  # 20,805 whole lines and the piece


def test_missing_and_directory_inputs_are_errors_not_crashes(tmp_path):
    sources, errors = resolve([str(tmp_path / "nope"), str(tmp_path), str(LOG), str(tmp_path / "*.none")])
    assert [s.name for s in sources] == [str(LOG)]
    # a pattern fails while the arguments are expanded, the others while they are opened
    assert [str(e) for e in errors] == [f"{tmp_path}/*.none: no file matches this pattern",
                                        f"{tmp_path}/nope: No such file or directory",
                                        f"{tmp_path}: is a directory (use {tmp_path}/* to read the files in it)"]


def test_zstd_is_refused_with_advice(tmp_path):
    path = tmp_path / "log.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    sources, errors = resolve([str(path)])
    assert sources == []
    assert [str(e) for e in errors] == [
        f"{path}: zstd-compressed input is not supported; use: zstd -dc FILE | tlslog ..."]


def test_stdin_source_when_no_arguments():
    assert resolve([]) == ([Source("<stdin>", None)], [])


@pytest.fixture(scope="module")
def whole_records() -> list[dict]:
    from tlslog.render import session_records

    return list(session_records(analyze([str(LOG)], Options(jobs=1)).sessions))


@pytest.mark.parametrize(("size", "jobs"), [
    (997, 1), (4096, 2), (65536, 1),
    pytest.param(997, 2, marks=pytest.mark.slow), pytest.param(4096, 1, marks=pytest.mark.slow),
    pytest.param(65536, 2, marks=pytest.mark.slow),
])
def test_chunking_does_not_change_results(whole_records, size, jobs):
    """Tiny chunks (many merges, sessions cut everywhere) give exactly the one-chunk result."""
    from tlslog.render import session_records

    parts = list(session_records(analyze([str(LOG)], Options(jobs=jobs, chunk_size=size)).sessions))
    assert parts == whole_records


def test_empty_file(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    report, code = _report(str(path))
    assert code == 6  # not one Postfix line: a warning, and the report of nothing
    assert report["inbound"]["total"] == 0 and report["inbound"]["coverage"] is None
    assert report["lines"]["read"] == 0


def test_journald_json_gives_the_same_verdicts(tmp_path, plain_report):
    """``journalctl -o json`` records of the same log: same sessions, same verdicts."""
    import calendar
    import re

    out = []
    for line in LOG.read_text().splitlines():
        m = re.match(r"(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\S+) ([^\[]+)\[(\d+)\]: (.*)", line)
        month = list(calendar.month_abbr).index(m[1])
        micros = calendar.timegm((2026, month, int(m[2]), int(m[3]), int(m[4]), int(m[5]))) * 1_000_000
        out.append(json.dumps({"__REALTIME_TIMESTAMP": str(micros), "_HOSTNAME": m[6], "SYSLOG_IDENTIFIER": m[7],
                               "_PID": m[8], "PRIORITY": "6", "MESSAGE": m[9]}))
    path = tmp_path / "journal.json"
    path.write_text("\n".join(out) + "\n")
    report, code = _report(str(path))
    assert code == 0
    for key in ("inbound", "outbound", "by_protocol", "by_trust", "by_ip_version"):
        assert report[key] == plain_report[key], key


# -- decompression: bounded blocks, members, damage -------------------------------------------

_COMPRESS = {
    "gzip": gzip.compress,
    "bzip2": lambda data: bz2.compress(data, 1),
    "xz": lambda data: lzma.compress(data, preset=0),
}
#: The standard library's own decompressor for each: all it can make of (damaged) data at once.
_DECOMPRESSOR = {
    "gzip": lambda: zlib.decompressobj(wbits=31),
    "bzip2": bz2.BZ2Decompressor,
    "xz": lzma.LZMADecompressor,
}


def _read_all(path: Path, block_size: int) -> tuple[bytes, int, DamagedInput | None]:
    """What `read_blocks` yields for a file: the bytes, the largest block, the damage if any."""
    blocks: list[bytes] = []
    try:
        for block in read_blocks(resolve([str(path)])[0][0], block_size):
            blocks.append(block)
    except DamagedInput as exc:
        return b"".join(blocks), max(map(len, blocks), default=0), exc
    return b"".join(blocks), max(map(len, blocks), default=0), None


@pytest.mark.parametrize("kind", list(_COMPRESS))
def test_a_decompression_bomb_comes_out_in_bounded_blocks(tmp_path, kind):
    """32 MiB of one byte compress to a few KiB (bzip2: 45 bytes), read as one block: the
    output still comes in blocks of at most the block size."""
    data = b"x" * (32 << 20)
    path = tmp_path / "bomb"
    path.write_bytes(_COMPRESS[kind](data))
    assert path.stat().st_size < (1 << 20)
    read, largest, error = _read_all(path, 1 << 16)
    assert error is None and read == data
    assert largest <= 1 << 16


@pytest.mark.parametrize("kind", list(_COMPRESS))
@pytest.mark.parametrize("block_size", [1, 7, 4096, 1 << 20])
def test_concatenated_members_whatever_the_block_size(tmp_path, kind, block_size):
    """Members after members (``cat a.gz b.gz``, pigz, pbzip2), cut anywhere, even in a magic."""
    first, second = LOG.read_bytes()[:5000], LOG.read_bytes()[5000:30000]
    path = tmp_path / "members"
    path.write_bytes(_COMPRESS[kind](first) + _COMPRESS[kind](second) + _COMPRESS[kind](b""))
    read, largest, error = _read_all(path, block_size)
    assert error is None and read == first + second
    assert largest <= block_size


@pytest.mark.parametrize("kind", list(_COMPRESS))
@pytest.mark.parametrize("block_size", [4096, 1 << 20])
def test_truncated_data_yields_what_it_holds_then_damage(tmp_path, kind, block_size):
    data = LOG.read_bytes()
    blob = _COMPRESS[kind](data)
    path = tmp_path / "cut"
    path.write_bytes(blob[: len(blob) * 3 // 4])
    read, _, error = _read_all(path, block_size)
    assert isinstance(error, DamagedInput) and str(error) == f"{path}: {kind} data ends early (file truncated?)"
    # everything the data holds: what the decompressor makes of it in one piece (gzip 181,819 bytes of
    # 249,094, xz 178,612; bzip2 only whole blocks: 99,964)
    assert read == _DECOMPRESSOR[kind]().decompress(blob[: len(blob) * 3 // 4])
    assert data.startswith(read)


@pytest.mark.parametrize("kind", list(_COMPRESS))
def test_corrupt_data_is_damage(tmp_path, kind):
    data = LOG.read_bytes()
    blob = bytearray(_COMPRESS[kind](data))
    blob[len(blob) // 2 : len(blob) // 2 + 64] = bytes(64)
    path = tmp_path / "corrupt"
    path.write_bytes(blob)
    read, _, error = _read_all(path, 4096)
    assert isinstance(error, DamagedInput) and f"corrupt {kind} data (" in str(error)
    assert len(read) < len(data)


def test_after_gzip_data_nul_padding_is_fine_and_garbage_is_damage(tmp_path):
    member = gzip.compress(b"one line\n")
    (tmp_path / "padded").write_bytes(member + bytes(1000))
    assert _read_all(tmp_path / "padded", 4096) == (b"one line\n", 9, None)
    (tmp_path / "garbage").write_bytes(member + b"junk")
    read, _, error = _read_all(tmp_path / "garbage", 4096)
    assert read == b"one line\n" and "trailing garbage after the gzip data" in str(error)


@pytest.mark.parametrize("kind", ["bzip2", "xz"])
def test_garbage_after_bzip2_or_xz_data_is_damage(tmp_path, kind):
    path = tmp_path / "garbage"
    path.write_bytes(_COMPRESS[kind](b"one line\n") + b"junk")
    read, _, error = _read_all(path, 4096)
    assert read == b"one line\n" and f"corrupt {kind} data (" in str(error)


def _fsspec():
    return import_or_skip("fsspec", "TLSLOG_DASK_REQUIRED", "fsspec is not installed here (pip install 'tlslog[dask]')")


def test_fsspec_urls_read_like_the_files_they_name():
    _fsspec()
    month = SAMPLES / "synthetic" / "month.log.gz"
    as_path = tlslog("report", str(month), "--year", "2024", "--format", "json")
    as_url = tlslog("report", month.resolve().as_uri(), "--year", "2024", "--format", "json")
    assert (as_url.code, as_url.stdout) == (0, as_path.stdout)
    rotated = SAMPLES / "realpostfix" / "e2e-mixed-rotated"
    files = tlslog("sessions", *(str(p) for p in maillogs(rotated)), "--format", "jsonl")
    pattern = rotated.resolve().as_uri() + "/maillog*"
    urls = tlslog("sessions", pattern, "--format", "jsonl")
    strip = lambda text: [{k: v for k, v in json.loads(line).items() if k != "source"}  # noqa: E731
                          for line in text.splitlines()]
    assert urls.code == 0 and strip(urls.stdout) == strip(files.stdout)
    assert {json.loads(line)["source"] for line in urls.stdout.splitlines()} == {
        rotated.resolve().as_uri() + "/maillog", rotated.resolve().as_uri() + "/maillog.1.gz"}


def test_unreadable_urls_are_named_in_one_line():
    _fsspec()
    missing = tlslog("report", "file:///nonexistent/maillog")
    assert (missing.code, missing.stderr) == (1, "tlslog: file:///nonexistent/maillog: No such file\n")
    unknown = tlslog("report", "nosuchfs://bucket/maillog")
    assert unknown.code == 1 and unknown.stderr.startswith("tlslog: nosuchfs://bucket/maillog: ")
    assert unknown.stderr.count("\n") == 1


def test_a_plain_url_is_cut_into_ranges_and_a_compressed_one_streamed(monkeypatch):
    """memory:// is what fsspec offers without a server; forked workers see its files too."""
    fsspec = _fsspec()
    from tlslog.sources import resolve

    log = SAMPLES / "realpostfix" / "default" / "maillog"
    with fsspec.open("memory://tlslog-test/maillog", "wb") as out:
        out.write(log.read_bytes())
    with fsspec.open("memory://tlslog-test/maillog.1.gz", "wb") as out:
        out.write(gzip.compress(log.read_bytes()))
    sources, errors = resolve(["memory://tlslog-test/maillog", "memory://tlslog-test/maillog.1.gz"])
    assert errors == []
    assert [(s.url, s.compression, s.seekable, s.worker_readable) for s in sources] == [
        ("memory://tlslog-test/maillog.1.gz", "gzip", False, True),
        ("memory://tlslog-test/maillog", None, True, False)]
    monkeypatch.setenv("TLSLOG_CHUNK_SIZE", "4096")  # many ranges, read by two workers
    for url in ("memory://tlslog-test/maillog", "memory://tlslog-test/maillog.1.gz"):
        remote = tlslog("report", url, "--internal", "none", "--format", "json", "--jobs", "2")
        path = tlslog("report", str(log), "--internal", "none", "--format", "json")
        assert (remote.code, remote.stdout) == (0, path.stdout)
