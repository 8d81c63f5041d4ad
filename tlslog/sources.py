"""Where lines come from: stdin, plain files, gzip/bzip2/xz files, globs of rotated logs, and
fsspec URLs (``s3://``, ``gs://``, ``file://``...: read when fsspec and the file system's
package are installed, e.g. with the ``dask`` extra; globs work there too).

`resolve` turns the command-line arguments into an ordered list of `Source`s (rotated logs
oldest first) plus the errors of arguments that cannot be read, so the readable ones are still
analysed. `read_blocks` yields decompressed bytes; compression is recognised by magic bytes,
not by file name. However much the data inflates (a "bomb" of gigabytes of one byte), the
output comes in bounded blocks. A compressed file cut short (rotation, full disk) yields
everything that could be decompressed and then raises `DamagedInput`.
"""

from __future__ import annotations

import bz2
import glob
import itertools
import lzma
import os
import re
import stat
import sys
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from .errors import DamagedInput, InputError

__all__ = ["Source", "is_url", "open_raw", "read_blocks", "resolve", "rotation_order"]

BLOCK_SIZE = 1 << 20

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


@dataclass(frozen=True)
class Source:
    """One input: a file path, standard input when ``path`` is None, or the output of a
    ``command`` (journalctl: `tlslog.journal`)."""

    name: str
    path: Path | None
    compression: str | None = None
    #: a regular file (not a pipe such as ``<(zcat …)``, a FIFO or a device)
    regular: bool = False
    #: argv of a process whose stdout is the input (read like stdin; run when read)
    command: tuple[str, ...] | None = None
    #: an fsspec URL (compression sniffed from its first bytes when it is resolved)
    url: str | None = None
    #: bytes as stored (compressed or not) of a regular file or URL, when it was resolved
    size: int | None = None

    @property
    def seekable(self) -> bool:
        """Plain regular files and URLs can be cut into byte ranges that workers read themselves."""
        return (self.path is not None or self.url is not None) and self.regular and self.compression is None

    @property
    def worker_readable(self) -> bool:
        """A compressed file or URL a cluster's worker can read whole itself (`tlslog.engine.wholefile`)."""
        return (self.path is not None or self.url is not None) and self.regular and self.compression is not None


def open_raw(source: Source) -> IO[bytes]:
    """The bytes of a file or URL as stored (not decompressed), seekable."""
    if source.url is not None:
        import fsspec

        return fsspec.open(source.url, "rb").open()
    assert source.path is not None
    return open(source.path, "rb")


_DATED = re.compile(r"^(?P<base>.+?)[-.](?P<date>\d{8}(?:\d{2})?)(?:\.(?:gz|bz2|xz|zst))?$")
_NUMBERED = re.compile(r"^(?P<base>.+?)\.(?P<n>\d{1,4})(?:\.(?:gz|bz2|xz|zst))?$")
_COMPRESSED = re.compile(r"^(?P<base>.+?)\.(?:gz|bz2|xz|zst)$")


def rotation_order(paths: list[str]) -> list[str]:
    """Order rotated logs oldest first: ``maillog.2.gz maillog.1 maillog`` and
    ``maillog-20261115.gz maillog-20261122 maillog``. Unrelated files keep their order."""
    groups: dict[str, list[tuple[tuple, int, str]]] = {}
    for index, path in enumerate(paths):
        directory, name = os.path.split(path)
        if m := _DATED.match(name):
            base, rank = m["base"], (0, m["date"], 0)
        elif m := _NUMBERED.match(name):
            base, rank = m["base"], (1, "", -int(m["n"]))
        elif m := _COMPRESSED.match(name):
            base, rank = m["base"], (1, "", 0)
        else:
            base, rank = name, (2, "", 0)
        groups.setdefault(os.path.join(directory, base), []).append((rank, index, path))
    ordered: list[str] = []
    for members in sorted(groups.values(), key=lambda g: min(i for _, i, _ in g)):
        ordered.extend(path for _, _, path in sorted(members))
    return ordered


def _compression_of(head: bytes) -> str | None:
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


_URL = re.compile(r"\A[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_url(text: str) -> bool:
    """Whether an argument is a URL (``scheme://…``) rather than a path."""
    return _URL.match(text) is not None


def _urls(arg: str) -> tuple[list[str], InputError | None]:
    """The URLs an fsspec URL (or glob of them) names, or why it cannot be read."""
    try:
        import fsspec
    except ImportError:
        return [], InputError(arg, "URL inputs need fsspec: pip install 'tlslog[dask]' (and s3fs, gcsfs... for "
                                   "their schemes)")
    try:
        fs, _, paths = fsspec.get_fs_token_paths(arg)
        found = [p for p in paths if fs.isfile(p)] if glob.has_magic(arg) else paths
        if not found:
            return [], InputError(arg, "no file matches this pattern")
        if not glob.has_magic(arg) and not fs.isfile(found[0]):
            return [], InputError(arg, "No such file" if not fs.exists(found[0]) else "not a file")
    except (ImportError, ValueError) as exc:  # an unknown scheme, or its package missing
        return [], InputError(arg, str(exc).split("\n")[0])
    except OSError as exc:
        return [], InputError(arg, _reason(exc))
    if not glob.has_magic(arg):
        return [arg], None  # as the user spelled it (the ``source`` column names it so)
    protocol = arg.split("://", 1)[0]
    return [p if is_url(p) else f"{protocol}://{p}" for p in found], None


def resolve(args: list[str]) -> tuple[list[Source], list[InputError]]:
    """Sources for the arguments (stdin when there are none), and why others were skipped."""
    if not args:
        return [Source("<stdin>", None)], []
    sources: list[Source] = []
    errors: list[InputError] = []
    expanded: list[str] = []
    urls: set[str] = set()
    for arg in args:
        if is_url(arg):
            found, error = _urls(arg)
            if error is not None:
                errors.append(error)
            found = rotation_order(sorted(found)) if glob.has_magic(arg) else found
            expanded.extend(found)
            urls.update(found)
        elif arg == "-":
            expanded.append(arg)
        elif glob.has_magic(arg) and not os.path.exists(arg):
            matches = glob.glob(arg)
            if not matches:
                errors.append(InputError(arg, "no file matches this pattern"))
            expanded.extend(rotation_order(sorted(matches)))
        else:
            expanded.append(arg)
    for arg in rotation_order(expanded):
        if arg == "-":
            sources.append(Source("<stdin>", None))
            continue
        path, url = (None, arg) if arg in urls else (Path(arg), None)
        try:
            regular = True  # a URL names an object of known size, read at any offset
            if path is not None:
                mode = path.stat().st_mode
                if stat.S_ISDIR(mode):
                    raise IsADirectoryError(f"is a directory (use {arg.rstrip('/')}/* to read the files in it)")
                regular = stat.S_ISREG(mode)
            compression = size = None
            if regular:  # a pipe cannot be peeked at without losing the bytes: sniffed while read
                with open_raw(Source(arg, path, url=url)) as handle:
                    compression = _compression_of(handle.read(6))
                    size = handle.seek(0, os.SEEK_END)
        except OSError as exc:
            errors.append(InputError(arg, _reason(exc)))
            continue
        if compression == "zstd":
            errors.append(InputError(arg, _ZSTD))
            continue
        sources.append(Source(arg, path, compression, regular, url=url, size=size))
    return sources, errors


_ZSTD = "zstd-compressed input is not supported; use: zstd -dc FILE | tlslog ..."


def _reason(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError) and exc.args and isinstance(exc.args[0], str) and not exc.strerror:
        return exc.args[0]
    return exc.strerror or str(exc)


def _decompressor(kind: str) -> zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor:
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor()


def read_blocks(source: Source, block_size: int = BLOCK_SIZE) -> Generator[bytes, None, None]:
    """The source's bytes, decompressed, in blocks of at most ``block_size`` bytes.

    Streams (stdin, pipes) are sniffed for compression from their first bytes, so
    ``cat maillog.1.gz | tlslog report`` works too. A command's output is read as it is.
    """
    try:
        if source.command is not None:
            from .journal import read_command  # the process machinery only when asked for

            yield from read_command(source, block_size)
            return
        if source.url is not None:
            import fsspec

            with fsspec.open(source.url, "rb") as remote:
                yield from _read_stream(source, remote, block_size)
            return
        if source.path is None:
            yield from _read_stream(source, sys.stdin.buffer, block_size)
            return
        try:
            handle = source.path.open("rb")
        except OSError as exc:
            raise InputError(source.name, _reason(exc)) from exc
        with handle:
            yield from _read_stream(source, handle, block_size)
    except OSError as exc:
        raise InputError(source.name, _reason(exc)) from exc


def _read_stream(source: Source, handle: BinaryIO, block_size: int) -> Iterator[bytes]:
    raw: Iterator[bytes] = iter(lambda: handle.read(block_size), b"")
    kind = source.compression
    if kind is None and not source.regular:
        first = next(raw, b"")
        while first and len(first) < 6 and (more := next(raw, b"")):
            first += more
        kind = _compression_of(first[:6])
        if kind == "zstd":
            raise InputError(source.name, _ZSTD)
        raw = itertools.chain([first], raw)
    if kind is None:
        yield from raw
    else:
        yield from _decompress(source.name, kind, raw, block_size)


def _decompress(name: str, kind: str, raw_blocks: Iterator[bytes], limit: int = BLOCK_SIZE) -> Iterator[bytes]:
    """Decompressed blocks of at most ``limit`` bytes each, whatever the compression ratio.

    A block of compressed input can inflate a thousandfold (gzip) or far more (bzip2, xz): the
    decompressor is asked for ``limit`` bytes at a time and keeps the rest of its input until
    asked again (zlib hands it back as ``unconsumed_tail``; bz2 and lzma keep it and say
    ``needs_input``), so memory stays bounded by ``limit`` plus one compressed block.
    """
    engine = _decompressor(kind)
    raw = next(raw_blocks, b"")
    while raw:
        drained = False  # the engine holds no more output for the input given so far
        while not drained:
            try:
                out = engine.decompress(raw, limit)
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
                raise DamagedInput(name, f"corrupt {kind} data ({exc})") from exc
            if out:
                yield out
            if engine.eof:
                break
            if isinstance(engine, (bz2.BZ2Decompressor, lzma.LZMADecompressor)):
                raw = b""  # kept inside until asked for more output
                drained = engine.needs_input
            else:  # zlib hands back what it did not read; a full block may leave output pending
                raw = engine.unconsumed_tail
                drained = not raw and len(out) < limit
        if not engine.eof:
            raw = next(raw_blocks, b"")
            continue
        # the end of a member: another may follow (``cat a.gz b.gz``, pigz, pbzip2)
        raw = engine.unused_data or next(raw_blocks, b"")
        if not raw:
            return
        if kind == "gzip":
            while len(raw) < 2 and (more := next(raw_blocks, b"")):  # a magic cut across two blocks
                raw += more
            if not raw.startswith(b"\x1f\x8b"):
                if raw.strip(b"\x00"):
                    raise DamagedInput(name, "trailing garbage after the gzip data")
                return
        engine = _decompressor(kind)
    raise DamagedInput(name, f"{kind} data ends early (file truncated?)")
