"""The Control and Head of any JMA report (気象庁防災情報XML), as one value, for the all-hazards parsers.

Pure, like :mod:`streams.official.report`: it reads the root element of a report that the adapter
(``streams.official.jma_xml.parse_report``) has already parsed safely and validated against JMA's schema.
Each report module (``jma_warnings``, ``jma_quake``, ``jma_tsunami``, ``jma_tornado``) names the
Control/Title values it handles and its own error type (a :class:`~streams.official.report.ReportError`,
so a pipeline that dead-letters ``ReportError`` dead-letters these too, with their reason).

Kinds are recognised by Control/Title (and checked against Head/InfoKind), never by Head/Title, which JMA
words freely (``埼玉県気象防災速報（竜巻注意）`` is a 竜巻注意情報). EventID and Serial may be empty: JMA leaves
them empty in 気象警報・注意報 and in some 竜巻注意情報; EventID may hold several ids separated by spaces (a
tsunami caused by two earthquakes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streams.official.report import (
    INFO_TYPES,
    MISSING_FIELD,
    NS,
    STATUSES,
    UNHANDLED_CODE,
    UNHANDLED_KIND,
    ReportError,
    ReportOrder,
    epoch_ms,
)

SEIS = "http://xml.kishou.go.jp/jmaxml1/body/seismology1/"
NSX = {**NS, "s": SEIS}  # NS (jmx, ib, b, eb) plus the seismology body (地震・津波)


@dataclass(frozen=True)
class ReportHead(ReportOrder):
    """Control and Head: who issued what, when, for which event, and whether it is real (通常)."""

    control_title: str
    control_status: str  # 通常 | 訓練 | 試験
    editorial_office: str
    publishing_office: str
    head_title: str
    report_datetime: int  # epoch ms
    target_datetime: int | None
    valid_datetime: int | None  # the report's validity (竜巻注意情報: 有効期限)
    event_id: str  # "" when JMA leaves it empty
    info_type: str  # 発表 | 訂正 | 取消
    serial: str
    info_kind: str
    info_kind_version: str
    headline_text: str

    @property
    def event_ids(self) -> tuple[str, ...]:
        """EventID split on white space (``20151114055157 20151114061750``: two earthquakes)."""
        return tuple(self.event_id.split())


def text(element: Any, path: str) -> str:
    """The stripped text at ``path`` (prefixes of :data:`NSX`), or "" when absent."""
    found = element.find(path, NSX) if element is not None else None
    return (found.text or "").strip() if found is not None else ""


def need(element: Any, path: str, error: type[ReportError], what: str = "") -> str:
    """The text at ``path``; ``error(missing_field)`` naming ``what`` (or the path) when absent or empty."""
    value = text(element, path)
    if not value:
        raise error(MISSING_FIELD, f"no {what or path} in the report")
    return value


def moment(value: str, what: str, error: type[ReportError]) -> int:
    """An xs:dateTime with offset as epoch ms; ``error(missing_field)`` when it is not one."""
    try:
        return epoch_ms(value, what)
    except ReportError as exc:
        raise error(exc.reason, exc.detail) from None


def optional_moment(value: str, what: str, error: type[ReportError]) -> int | None:
    return moment(value, what, error) if value else None


def number(value: str, what: str, error: type[ReportError]) -> float | None:
    """A decimal as JMA writes it; ``NaN`` (with condition 不明) is None; anything else not a number is an error."""
    if value == "NaN":
        return None
    try:
        parsed = float(value)
    except ValueError:
        raise error(MISSING_FIELD, f"{what} is {value!r}, not a number") from None
    if parsed != parsed or parsed in (float("inf"), float("-inf")):
        raise error(MISSING_FIELD, f"{what} is {value!r}, not a finite number")
    return parsed


def read_head(root: Any, titles: Mapping[str, str], error: type[ReportError]) -> ReportHead:
    """Control and Head, checked: Control/Title one of ``titles`` (title -> its InfoKind), a known status and type.

    ``error(unhandled_kind)`` for another kind, ``error(unhandled_code)`` for a status or InfoType the hub does
    not handle, ``error(missing_field)`` for a missing or malformed element.
    """
    control_title = need(root, "jmx:Control/jmx:Title", error, "Control/Title")
    info_kind = need(root, "ib:Head/ib:InfoKind", error, "Head/InfoKind")
    if titles.get(control_title) != info_kind:
        raise error(
            UNHANDLED_KIND,
            f"Control/Title {control_title!r}, InfoKind {info_kind!r} (handled: {', '.join(sorted(titles))})",
        )
    control_status = need(root, "jmx:Control/jmx:Status", error, "Control/Status")
    if control_status not in STATUSES:
        raise error(UNHANDLED_CODE, f"Control/Status {control_status!r} (handled: {', '.join(STATUSES)})")
    info_type = need(root, "ib:Head/ib:InfoType", error, "Head/InfoType")
    if info_type not in INFO_TYPES:
        raise error(UNHANDLED_CODE, f"InfoType {info_type!r} (handled: {', '.join(INFO_TYPES)})")
    head = root.find("ib:Head", NSX)
    return ReportHead(
        control_title=control_title,
        control_status=control_status,
        editorial_office=text(root, "jmx:Control/jmx:EditorialOffice"),
        publishing_office=text(root, "jmx:Control/jmx:PublishingOffice"),
        head_title=text(head, "ib:Title"),
        report_datetime=moment(text(head, "ib:ReportDateTime"), "ReportDateTime", error),
        target_datetime=optional_moment(text(head, "ib:TargetDateTime"), "TargetDateTime", error),
        valid_datetime=optional_moment(text(head, "ib:ValidDateTime"), "ValidDateTime", error),
        event_id=text(head, "ib:EventID"),
        info_type=info_type,
        serial=text(head, "ib:Serial"),
        info_kind=info_kind,
        info_kind_version=text(head, "ib:InfoKindVersion"),
        headline_text=text(head, "ib:Headline/ib:Text"),
    )


def headline_areas(root: Any, information_type: str) -> tuple[tuple[str, str], ...]:
    """(code, name) of every Area of the Headline's Information of ``information_type``."""
    return tuple(
        (text(area, "ib:Code"), text(area, "ib:Name"))
        for information in root.findall("ib:Head/ib:Headline/ib:Information", NSX)
        if information.get("type") == information_type
        for area in information.findall("ib:Item/ib:Areas/ib:Area", NSX)
    )
