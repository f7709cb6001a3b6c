"""気象警報・注意報 (JMA's weather warnings and advisories) as values: VPWW53, VPWW54 (H27) and VPWW55–61 (R06).

Pure; reads a report already parsed safely and validated against JMA's schema (see :mod:`streams.official.head`).
Three generations share InfoKind 気象警報・注意報 and are told apart by Control/Title:

* ``気象特別警報・警報・注意報`` (VPWW53) and ``気象警報・注意報（Ｈ２７）`` (VPWW54): every hazard in one report;
* ``気象警報・注意報（Ｒ０６）（大雨|土砂|高潮|暴風|波浪|大雪|その他注意報）`` (VPWW55–61, JMA's reform of late May
  2026): one report per hazard family, the kinds named with their 警戒レベル (``レベル３大雨警報``,
  ``レベル４土砂災害危険警報``, ``レベル２大雨注意報``; 暴風・波浪・大雪 and the その他注意報 carry none).

Body/Warning comes in blocks by area level (its ``type``): 府県予報区等, 一次細分区域等, 市町村等をまとめた地域等
(6-digit 府県予報区・細分区域 codes), 市町村等 (7-digit 気象・地震・火山情報／市町村等 codes: these name
municipalities — a designated city whole 1410000, a part of a city 0410001 仙台市東部 — the same codes as
土砂災害警戒情報), and in VPWW57 (高潮) also 高潮予報区間 (a stretch of coast). Each area lists the kinds in
effect or just ended with their Status: 発表 (issued), 継続 (continued), 解除 (cleared), 特別警報から警報 /
特別警報から注意報 / 警報から注意報 (switched down: the kind listed is the one now in effect) and
発表警報・注意報はなし (no warning or advisory at all). In H27/VPWW53 a report lists every kind in effect per area;
in R06 a report speaks for its own hazard family only (:attr:`WarningReport.hazards`).

Each kind gets the hazard it belongs to (what (municipality, hazard) de-duplication keys on: 大雨, 土砂災害,
洪水, 高潮, 暴風 (強風注意報 → 暴風警報), 暴風雪 (風雪注意報 → 暴風雪警報), 波浪, 大雪, 雷, …), its grade
(注意報 1, 警報 2, 危険警報 3, 特別警報 4) and the 警戒レベル it carries: R06 kinds from their name
(``レベル４…`` → 4); older kinds from JMA's table of 警戒レベル相当 (:func:`warning_level`); None where JMA
assigns none (暴風, 波浪, 大雪, 雷, …).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from streams.official.head import NSX, ReportHead, need, read_head, text
from streams.official.report import MISSING_FIELD, UNHANDLED_CODE, ReportError

INFO_KIND = "気象警報・注意報"
VPWW53, VPWW54 = "気象特別警報・警報・注意報", "気象警報・注意報（Ｈ２７）"
R06_PREFIX = "気象警報・注意報（Ｒ０６）"
# R06 reports: the hazard family in the title's second parentheses → the hazards it speaks for
OTHER_ADVISORIES = ("雷", "融雪", "濃霧", "乾燥", "なだれ", "低温", "霜", "着氷", "着雪")
R06_FAMILIES = {
    "大雨": ("大雨",),
    "土砂": ("土砂災害",),
    "高潮": ("高潮",),
    "暴風": ("暴風", "暴風雪"),
    "波浪": ("波浪",),
    "大雪": ("大雪",),
    "その他注意報": OTHER_ADVISORIES,
}
TITLES = {VPWW53: INFO_KIND, VPWW54: INFO_KIND, **{f"{R06_PREFIX}（{f}）": INFO_KIND for f in R06_FAMILIES}}
ALL_HAZARDS = frozenset({"大雨", "土砂災害", "洪水", "高潮", "暴風", "暴風雪", "波浪", "大雪", *OTHER_ADVISORIES})

# Body/Warning types (area levels)
PREFECTURE, FIRST, GROUP, MUNICIPAL, STORM_SURGE_SECTION = (
    "府県予報区等",
    "一次細分区域等",
    "市町村等をまとめた地域等",
    "市町村等",
    "高潮予報区間",
)
LEVELS = (PREFECTURE, FIRST, GROUP, MUNICIPAL, STORM_SURGE_SECTION)

ISSUED, CONTINUED, CLEARED, NONE_ISSUED = "発表", "継続", "解除", "発表警報・注意報はなし"
GRADES = {"注意報": 1, "警報": 2, "危険警報": 3, "特別警報": 4}
SWITCHED = re.compile(
    r"^(特別警報|危険警報|警報|注意報)から(特別警報|危険警報|警報|注意報)$"
)  # 切替 (e.g. 警報から注意報)
KIND_NAME = re.compile(r"^(?:レベル([１２３４５1-5]))?(.+?)(特別警報|危険警報|警報|注意報)$")
WIDE_DIGITS = str.maketrans("１２３４５", "12345")
SAME_HAZARD = {"強風": "暴風", "風雪": "暴風雪"}  # 強風注意報 and 暴風警報 are one hazard, as 風雪注意報 and 暴風雪警報

# 警戒レベル相当 of the kinds without a level in their name (JMA, 「防災気象情報と警戒レベルとの対応について」):
# 大雨特別警報 5; 高潮特別警報, 高潮警報 4; 大雨警報 (土砂災害), 洪水警報 3, and 高潮注意報 when it says it may
# switch to a 高潮警報 3; 大雨注意報, 洪水注意報, 高潮注意報 2. JMA gives no 警戒レベル to the other kinds.
LEVEL_TABLE = {
    "大雨特別警報": 5,
    "高潮特別警報": 4,
    "高潮警報": 4,
    "大雨警報": 3,
    "洪水警報": 3,
    "大雨注意報": 2,
    "洪水注意報": 2,
    "高潮注意報": 2,
}


class WarningError(ReportError):
    """A 気象警報・注意報 the hub cannot read: an unhandled title, status or kind, or a missing element."""


@dataclass(frozen=True)
class WarningKind:
    """One kind listed for an area: its name and code as JMA gives them, its status, and what the hub reads from it."""

    name: str  # verbatim, e.g. レベル３大雨警報, 大雨特別警報, 強風注意報
    code: str  # JMA's 警報等情報要素 code (03 大雨警報, 33 大雨特別警報, 49 レベル４土砂災害危険警報 …)
    status: str  # 発表 | 継続 | 解除 | 特別警報から警報 | 特別警報から注意報 | 警報から注意報 | …
    hazard: str  # 大雨, 土砂災害, 洪水, 高潮, 暴風, 暴風雪, 波浪, 大雪, 雷 …
    grade: int  # 注意報 1, 警報 2, 危険警報 3, 特別警報 4
    warning_level: int | None  # 警戒レベル the kind carries (None: JMA assigns none)
    condition: str = ""  # 大雨警報's 土砂災害 / 浸水害 / 土砂災害、浸水害
    last_kind_name: str = ""  # LastKind: the kind this replaced (R06 and H27), "" when absent
    last_kind_code: str = ""
    next_kinds: tuple[str, ...] = ()  # NextKinds/NextKind/Sentence: 「…に切り替える可能性が高い」

    @property
    def in_effect(self) -> bool:
        """The kind holds after this report (issued, continued or switched down to it); not when cleared."""
        return self.status != CLEARED

    @property
    def switched_from(self) -> str:
        """切替: the grade this kind was switched from (特別警報 / 警報 …), or "" when the status is no 切替."""
        match = SWITCHED.match(self.status)
        return match.group(1) if match else ""


@dataclass(frozen=True)
class WarningArea:
    """One Body/Warning item: an area of one level and the kinds listed for it."""

    level: str  # 府県予報区等 | 一次細分区域等 | 市町村等をまとめた地域等 | 市町村等 | 高潮予報区間
    code: str  # 7 digits for 市町村等, 6 for the forecast areas
    name: str
    kinds: tuple[WarningKind, ...]
    none_issued: bool  # Status 発表警報・注意報はなし: no warning or advisory at all
    change_status: str = ""  # 警報・注意報種別に変化有 | 変化無 | …

    @property
    def in_effect(self) -> tuple[WarningKind, ...]:
        return tuple(k for k in self.kinds if k.in_effect)


@dataclass(frozen=True)
class WarningReport:
    """A 気象警報・注意報 report: its head, its generation, the hazards it speaks for, and every area's kinds."""

    head: ReportHead
    generation: str  # VPWW53 | VPWW54 | R06
    hazards: frozenset[str]  # the hazards this report speaks for (a kind absent from an area is not in effect)
    areas: tuple[WarningArea, ...]

    @property
    def municipal(self) -> tuple[WarningArea, ...]:
        """The 市町村等 items: the areas that name municipalities."""
        return tuple(a for a in self.areas if a.level == MUNICIPAL)

    @property
    def prefectures(self) -> frozenset[str]:
        """The 2-digit prefecture codes of its areas (a 府県予報区・細分区域 or 市町村等 code starts with one)."""
        return frozenset(a.code[:2] for a in self.areas if a.level != STORM_SURGE_SECTION and a.code[:2].isdigit())


def warning_level(name: str, condition: str = "", next_kinds: tuple[str, ...] = ()) -> int | None:
    """The 警戒レベル a kind carries: from its name (R06 ``レベルN…``) or JMA's table (H27, VPWW53); None if none.

    大雨警報 whose Condition is 浸水害 alone carries none (JMA: 大雨警報（土砂災害）is 警戒レベル3相当); a
    高潮注意報 that says it may switch to a 高潮警報 (NextKinds) is 3.
    """
    match = KIND_NAME.match(name)
    if match and match.group(1):
        return int(match.group(1).translate(WIDE_DIGITS))
    if name == "大雨警報" and condition and "土砂災害" not in condition:
        return None
    if name == "高潮注意報" and any(s.startswith(("高潮警報", "高潮特別警報")) for s in next_kinds):
        return 3
    return LEVEL_TABLE.get(name)


def hazard_and_grade(name: str) -> tuple[str, int]:
    """(hazard, grade) of a kind's name; WarningError for a name that is no 注意報/警報/危険警報/特別警報."""
    match = KIND_NAME.match(name)
    if not match:
        raise WarningError(UNHANDLED_CODE, f"warning kind {name!r} is not a 注意報, 警報, 危険警報 or 特別警報")
    hazard = match.group(2)
    return SAME_HAZARD.get(hazard, hazard), GRADES[match.group(3)]


def _kind(kind: Any) -> WarningKind | None:
    """One Kind element; None for the empty Kind of 発表警報・注意報はなし."""
    name, status = text(kind, "b:Name"), text(kind, "b:Status")
    if status not in (ISSUED, CONTINUED, CLEARED, NONE_ISSUED) and not SWITCHED.match(status):
        raise WarningError(UNHANDLED_CODE, f"warning status {status!r} of kind {name!r}")
    if status == NONE_ISSUED or not name:
        if status != NONE_ISSUED:
            raise WarningError(MISSING_FIELD, f"a warning kind without a Name (status {status!r})")
        return None
    hazard, grade = hazard_and_grade(name)
    condition = text(kind, "b:Condition")
    next_kinds = kind.findall("b:NextKinds/b:NextKind", NSX)
    return WarningKind(
        name=name,
        code=text(kind, "b:Code"),
        status=status,
        hazard=hazard,
        grade=grade,
        warning_level=warning_level(name, condition, tuple(text(n, "b:Name") for n in next_kinds)),
        condition=condition,
        last_kind_name=text(kind, "b:LastKind/b:Name"),
        last_kind_code=text(kind, "b:LastKind/b:Code"),
        next_kinds=tuple(text(n, "b:Sentence") or text(n, "b:Name") for n in next_kinds),
    )


def _area(item: Any, level: str) -> WarningArea:
    code = need(item, "b:Area/b:Code", WarningError, f"Area/Code in a {level} item")
    kinds, none_issued = [], False
    for element in item.findall("b:Kind", NSX):
        kind = _kind(element)
        if kind is None:
            none_issued = True
        else:
            kinds.append(kind)
    return WarningArea(
        level, code, text(item, "b:Area/b:Name"), tuple(kinds), none_issued, text(item, "b:ChangeStatus")
    )


def _level(warning: Any) -> str | None:
    """The area level of a Body/Warning block from its type, e.g. 気象警報・注意報（市町村等）→ 市町村等."""
    kind = warning.get("type") or ""
    for level in LEVELS:
        if kind.endswith(f"（{level}）"):
            return level
    return None


def _generation(title: str) -> tuple[str, frozenset[str]]:
    if title == VPWW53:
        return "VPWW53", ALL_HAZARDS
    if title == VPWW54:
        return "VPWW54", ALL_HAZARDS
    family = title.removeprefix(R06_PREFIX).strip("（）")
    return "R06", frozenset(R06_FAMILIES[family])


def read_warnings(root: Any) -> WarningReport:
    """The report's values; WarningError (a ReportError) for what the hub cannot read."""
    head = read_head(root, TITLES, WarningError)
    generation, hazards = _generation(head.control_title)
    body = root.find("b:Body", NSX)
    areas: list[WarningArea] = []
    if body is None:
        if head.info_type != "取消":
            raise WarningError(MISSING_FIELD, "no meteorological Body in the report")
        return WarningReport(head, generation, hazards, ())
    for warning in body.findall("b:Warning", NSX):
        level = _level(warning)
        if level is None:
            raise WarningError(UNHANDLED_CODE, f"Body/Warning type {warning.get('type')!r} (areas of an unknown level)")
        areas += [_area(item, level) for item in warning.findall("b:Item", NSX)]
    if head.info_type != "取消" and not any(a.level == MUNICIPAL for a in areas):
        raise WarningError(MISSING_FIELD, "no Body/Warning of type 気象警報・注意報（市町村等）")
    return WarningReport(head, generation, hazards, tuple(areas))
