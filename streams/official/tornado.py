"""竜巻注意情報 (JMA's tornado alert information) as values: VPHW50, VPHW51 (目撃情報付き, with a sighting).

Pure; reads a report already parsed safely and validated against JMA's schema (see :mod:`streams.official.head`).
Control/Title ``竜巻注意情報`` (VPHW50) or ``竜巻注意情報（目撃情報付き）`` (VPHW51), InfoKind 竜巻注意情報; Head/Title
varies (from 2025 ``埼玉県気象防災速報（竜巻注意）``). Body/Warning lists the areas at four levels, each item with
Kind 竜巻注意情報 (code 1) and Status 発表, or なし (code 0): 発表細分 (the prefecture, 110000), 一次細分区域等
(110010 南部 — what the information is issued for), 市町村等をまとめた地域等 and 市町村等 (7-digit codes).

A 竜巻注意情報 is short-lived: it is valid until Head/ValidDateTime (有効期限, about an hour after issue) and
is never cleared. The sighting (目撃情報) is the Headline's Information of type 竜巻注意情報（目撃情報あり） (the
一次細分区域 where a tornado or a gust was seen) and JMA's headline opens with 【目撃情報あり】 (some VPHW50
reports say it in the headline only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.official.head import NSX, ReportHead, headline_areas, need, read_head, text
from streams.official.report import MISSING_FIELD, UNHANDLED_CODE, ReportError

INFO_KIND = "竜巻注意情報"
TITLES = {"竜巻注意情報": INFO_KIND, "竜巻注意情報（目撃情報付き）": INFO_KIND}
VPHW = {"竜巻注意情報": "VPHW50", "竜巻注意情報（目撃情報付き）": "VPHW51"}
ISSUED, NONE = "発表", "なし"
ISSUING, FIRST, GROUP, MUNICIPAL = "発表細分", "一次細分区域等", "市町村等をまとめた地域等", "市町村等"
LEVELS = (ISSUING, FIRST, GROUP, MUNICIPAL)
SIGHTING_INFORMATION = "竜巻注意情報（目撃情報あり）"
SIGHTING_MARK = "【目撃情報あり】"


class TornadoError(ReportError):
    """A 竜巻注意情報 the hub cannot read: an unhandled title, status or level, or a missing element."""


@dataclass(frozen=True)
class TornadoArea:
    level: str  # 発表細分 | 一次細分区域等 | 市町村等をまとめた地域等 | 市町村等
    code: str
    name: str
    kind_name: str  # 竜巻注意情報 | なし
    kind_code: str  # 1 | 0
    status: str  # 発表 | なし

    @property
    def issued(self) -> bool:
        return self.status == ISSUED


@dataclass(frozen=True)
class TornadoReport:
    head: ReportHead
    valid_until: int  # epoch ms: Head/ValidDateTime, the report's 有効期限
    areas: tuple[TornadoArea, ...]
    sighting_areas: tuple[tuple[str, str], ...] = ()  # (code, name) of the 一次細分区域 of the sighting

    @property
    def vphw(self) -> str:
        return VPHW[self.head.control_title]

    @property
    def sighted(self) -> bool:
        """A tornado or gust was seen (目撃情報あり)."""
        return bool(self.sighting_areas) or self.head.headline_text.startswith(SIGHTING_MARK)

    @property
    def first_areas(self) -> tuple[TornadoArea, ...]:
        """The 一次細分区域 it is issued for (status 発表)."""
        return tuple(a for a in self.areas if a.level == FIRST and a.issued)

    @property
    def municipal(self) -> tuple[TornadoArea, ...]:
        """The 市町村等 items (status 発表)."""
        return tuple(a for a in self.areas if a.level == MUNICIPAL and a.issued)

    @property
    def prefectures(self) -> frozenset[str]:
        return frozenset(a.code[:2] for a in self.areas if a.issued and a.code[:2].isdigit())


def _level(warning: Any) -> str:
    kind = warning.get("type") or ""
    for level in LEVELS:
        if kind == f"竜巻注意情報（{level}）":
            return level
    raise TornadoError(UNHANDLED_CODE, f"Body/Warning type {kind!r} (areas of an unknown level)")


def _area(item: Any, level: str) -> TornadoArea:
    status = text(item, "b:Kind/b:Status")
    if status not in (ISSUED, NONE):
        raise TornadoError(UNHANDLED_CODE, f"竜巻注意情報 status {status!r} (handled: {ISSUED}, {NONE})")
    return TornadoArea(
        level=level,
        code=need(item, "b:Area/b:Code", TornadoError, f"Area/Code in a {level} item"),
        name=text(item, "b:Area/b:Name"),
        kind_name=text(item, "b:Kind/b:Name"),
        kind_code=text(item, "b:Kind/b:Code"),
        status=status,
    )


def read_tornado(root: Any) -> TornadoReport:
    """The report's values; TornadoError (a ReportError) for what the hub cannot read."""
    head = read_head(root, TITLES, TornadoError)
    if head.valid_datetime is None:
        raise TornadoError(MISSING_FIELD, "no Head/ValidDateTime (有効期限) in a 竜巻注意情報")
    body = root.find("b:Body", NSX)
    areas: list[TornadoArea] = []
    for warning in body.findall("b:Warning", NSX) if body is not None else ():
        level = _level(warning)
        areas += [_area(item, level) for item in warning.findall("b:Item", NSX)]
    if head.info_type != "取消" and not any(a.level == FIRST for a in areas):
        raise TornadoError(MISSING_FIELD, "no Body/Warning of type 竜巻注意情報（一次細分区域等）")
    return TornadoReport(head, head.valid_datetime, tuple(areas), headline_areas(root, SIGHTING_INFORMATION))
