"""Every kind of JMA report the hub reads, by Control/Title: one entry point from a validated document to its value.

``read_any(root)`` picks the parser by Control/Title (never Head/Title) and returns its typed value:

=================================================================  ================================  ==============
Control/Title                                                      value                             module
=================================================================  ================================  ==============
土砂災害警戒情報, 指定河川洪水予報, 記録的短時間大雨情報            :class:`JmaReport`                jma_report
気象特別警報・警報・注意報 (VPWW53), 気象警報・注意報（Ｈ２７）,     :class:`WarningReport`            jma_warnings
気象警報・注意報（Ｒ０６）（…） (VPWW55–61)
震度速報, 震源に関する情報, 震源・震度に関する情報 (VXSE51–53)      :class:`QuakeReport`              jma_quake
津波警報・注意報・予報a, 津波情報a, 沖合の津波観測に関する情報     :class:`TsunamiReport`            jma_tsunami
竜巻注意情報, 竜巻注意情報（目撃情報付き） (VPHW50/51)              :class:`TornadoReport`            jma_tornado
=================================================================  ================================  ==============

Any other title is a :class:`ReportError` ``unhandled_kind``; each parser raises its own ReportError subclass
(WarningError, QuakeError, TsunamiError, TornadoError) with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.official import quake as jma_quake
from streams.official import tornado as jma_tornado
from streams.official import tsunami as jma_tsunami
from streams.official import warnings as jma_warnings
from streams.official.head import text
from streams.official.quake import QuakeReport, read_quake
from streams.official.report import KINDS, UNHANDLED_KIND, JmaReport, ReportError, read_report
from streams.official.tornado import TornadoReport, read_tornado
from streams.official.tsunami import TsunamiReport, read_tsunami
from streams.official.warnings import WarningReport, read_warnings

AnyReport = JmaReport | WarningReport | QuakeReport | TsunamiReport | TornadoReport

READERS: dict[str, Callable[[Any], AnyReport]] = {
    **{title: read_report for title in KINDS},
    **{title: read_warnings for title in jma_warnings.TITLES},
    **{title: read_quake for title in jma_quake.TITLES},
    **{title: read_tsunami for title in jma_tsunami.TITLES},
    **{title: read_tornado for title in jma_tornado.TITLES},
}


def read_any(root: Any) -> AnyReport:
    """The value of any handled report; ReportError (or its subclass) with a reason otherwise."""
    title = text(root, "jmx:Control/jmx:Title")
    reader = READERS.get(title)
    if reader is None:
        raise ReportError(UNHANDLED_KIND, f"Control/Title {title!r} (handled: {', '.join(READERS)})")
    return reader(root)
