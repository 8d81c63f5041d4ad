"""tlslog: how much of your mail crosses the wire encrypted? TLS coverage from Postfix logs.

The library in four calls (the CLI is a thin layer over them)::

    from tlslog import analyze, session_frame, build_report
    analysis = analyze(["/var/log/maillog"])          # sources -> grammar -> fold
    frame = session_frame(analysis)                   # one pandas row per session/delivery
    report = build_report(frame, analysis.stats)      # plain dict, the `report --format json` contract
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Analysis", "Options", "__version__", "analyze", "build_report", "session_frame"]


def __getattr__(name: str):  # noqa: ANN202 - lazy: `tlslog --version` must not import pandas
    if name in ("analyze", "Analysis", "Options"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "session_frame":
        from .frames import session_frame

        return session_frame
    if name == "build_report":
        from .report import build_report

        return build_report
    raise AttributeError(name)
