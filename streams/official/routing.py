"""Where an official report goes: its key, its time, and the region topics it concerns (poller and replay).

The JMA poller (``bosai jma watch``) and ``bosai replay --jma`` both put reports on the official-reports
topic of every region pack whose prefecture the report concerns, keyed ``<InfoKind>|<EventID>`` so
one event's reports stay in order on one partition (an earthquake's VXSE51–53 share ``地震|<EventID>``, a
tsunami's VTSE41/51/52 ``津波|<EventID>``: :func:`streams.official.relay.relay_key`). A tsunami report, a
hypocentre alone and a withdrawal without areas go to every region (which coast a 津波予報区 is, is in the
packs' tables; a region whose areas it does not name counts it as another prefecture's). A report of no
pack's prefecture is not written (counted). A document the hub cannot read at all (not XML, not valid
against JMA's schema, a kind it does not handle) is still written — to every region's topic, keyed by its
entry id — so that each worker dead-letters it with the reason: bad input never vanishes silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.official.jma_xml import JmaXmlError, parse_report
from streams.official.kinds import AnyReport, read_any
from streams.official.relay import relay_key, relay_prefectures
from streams.official.report import JmaReport, ReportError, prefectures_of

ROUTED, OTHER_PREFECTURE, UNREADABLE = "routed", "other_prefecture", "unreadable"


@dataclass(frozen=True)
class Routed:
    """One report, keyed and addressed."""

    key: str
    topics: tuple[str, ...]
    outcome: str  # routed | other_prefecture | unreadable
    report: AnyReport | None = None
    problem: str = ""

    @property
    def order(self) -> tuple[int, int]:
        """ReportDateTime and Serial (unreadable documents first: they carry no time)."""
        if self.report is None:
            return (0, 0)
        return self.report.order if isinstance(self.report, JmaReport) else self.report.head.order

    @property
    def control_title(self) -> str:
        if self.report is None:
            return ""
        return self.report.control_title if isinstance(self.report, JmaReport) else self.report.head.control_title


def route(xml: bytes, entry_id: str, topics_by_prefecture: Mapping[str, Sequence[str]]) -> Routed:
    """The key and topics of one report (``topics_by_prefecture``: 2-digit code → official topics)."""
    every = tuple(t for ts in topics_by_prefecture.values() for t in ts)
    try:
        report = read_any(parse_report(xml))
    except (JmaXmlError, ReportError) as exc:
        return Routed(entry_id, every, UNREADABLE, problem=str(exc))
    if isinstance(report, JmaReport):
        key, prefectures = report.key, prefectures_of(report)
    else:
        # a tsunami (its coast is in the packs' tables), a hypocentre alone or a withdrawal: every region
        key, prefectures = relay_key(report), set(relay_prefectures(report)) or set(topics_by_prefecture)
    topics = tuple(t for code in sorted(prefectures) for t in topics_by_prefecture.get(code, ()))
    if not topics:
        return Routed(key, (), OTHER_PREFECTURE, report)
    return Routed(key, topics, ROUTED, report)


def report_files(paths: Sequence[Path]) -> list[Path]:
    """The XML files named, folders expanded to their *.xml and *.xml.gz (sorted)."""
    files: list[Path] = []
    for path in paths:
        files += sorted([*path.glob("*.xml"), *path.glob("*.xml.gz")]) if path.is_dir() else [path]
    return files
