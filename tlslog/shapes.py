"""Group unparsed lines by shape, so that one example stands for many similar lines."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

__all__ = ["group_by_shape", "shape_of"]

_SHAPES = [
    (re.compile(r"\[[^\]\s]*\](?::\d+)?"), "[ADDR]"),
    (re.compile(r"<[^>\s]*>"), "<ADDR>"),
    (re.compile(r"\b(?:[0-9A-F]{5,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}z[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+)\b"), "QUEUEID"),
    (re.compile(r"\b\d+(?:\.\d+)*\b"), "N"),
]


class _Line(Protocol):
    tag: str
    message: str


def shape_of(tag: str, message: str) -> str:
    """``smtpd: connect frm unknown[ADDR]`` for ``connect frm unknown[192.0.2.1]:25``."""
    text = message
    for pattern, placeholder in _SHAPES:
        text = pattern.sub(placeholder, text)
    program = tag.rsplit("/", 1)[-1]
    return f"{program}: {text[:160]}"


def group_by_shape(lines: Sequence[_Line]) -> list[tuple[str, list]]:
    """Shapes with their lines, most frequent first (ties: first seen first)."""
    groups: dict[str, list] = {}
    for line in lines:
        groups.setdefault(shape_of(line.tag, line.message), []).append(line)
    return sorted(groups.items(), key=lambda item: -len(item[1]))
