"""tlslog: how much of your mail crosses the wire encrypted? TLS coverage from Postfix logs.

The library in three calls (the CLI is a thin layer over them)::

    from tlslog import analyze, build_report
    analysis = analyze(["/var/log/maillog"])            # sources -> grammar -> fold -> settle
    analysis.sessions                                   # the session table: one pandas row per session/delivery
    report = build_report(analysis.sessions, analysis.stats)   # plain dict, the `report --format json` contract
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Analysis", "Options", "__version__", "analyze", "build_report"]


def __getattr__(name: str) -> Any:  # lazy: `tlslog --version` must not import pandas
    if name in ("analyze", "Analysis", "Options"):
        from . import analysis

        return getattr(analysis, name)
    if name == "build_report":
        from .report import build_report

        return build_report
    raise AttributeError(name)
