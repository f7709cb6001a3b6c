"""Where an official report goes: its key, its time, and the region topics it concerns (poller and replay).

The JMA poller (``bosai jma watch``) and ``bosai replay --jma`` both put reports on the official-reports
topic of every region pack whose prefecture the report concerns, keyed ``<InfoKind>|<EventID>`` so
one event's reports stay in order on one partition. A report of no pack's prefecture is not written
(counted). A document the hub cannot read at all (not XML, not valid against JMA's schema, a kind it
does not handle) is still written — to every region's topic, keyed by its entry id — so that each
worker dead-letters it with the reason: bad input never vanishes silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.official.jma_xml import JmaXmlError, parse_report
from streams.official.report import JmaReport, ReportError, prefectures_of, read_report

ROUTED, OTHER_PREFECTURE, UNREADABLE = "routed", "other_prefecture", "unreadable"


@dataclass(frozen=True)
class Routed:
    """One report, keyed and addressed."""

    key: str
    topics: tuple[str, ...]
    outcome: str  # routed | other_prefecture | unreadable
    report: JmaReport | None = None
    problem: str = ""

    @property
    def order(self) -> tuple[int, int]:
        """ReportDateTime and Serial (unreadable documents first: they carry no time)."""
        return self.report.order if self.report is not None else (0, 0)


def route(xml: bytes, entry_id: str, topics_by_prefecture: Mapping[str, Sequence[str]]) -> Routed:
    """The key and topics of one report (``topics_by_prefecture``: 2-digit code → official topics)."""
    every = tuple(t for ts in topics_by_prefecture.values() for t in ts)
    try:
        report = read_report(parse_report(xml))
    except (JmaXmlError, ReportError) as exc:
        return Routed(entry_id, every, UNREADABLE, problem=str(exc))
    topics = tuple(t for code in sorted(prefectures_of(report)) for t in topics_by_prefecture.get(code, ()))
    if not topics:
        return Routed(report.key, (), OTHER_PREFECTURE, report)
    return Routed(report.key, topics, ROUTED, report)


def report_files(paths: Sequence[Path]) -> list[Path]:
    """The XML files named, folders expanded to their *.xml (sorted)."""
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.xml")) if path.is_dir() else [path]
    return files
