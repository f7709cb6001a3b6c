"""JMA's warnings, earthquakes, tsunami and tornado reports as relayed alerts: a pure lifecycle per report key.

The same contract as :mod:`streams.official.lifecycle` (土砂災害警戒情報, 指定河川洪水予報, 記録的短時間大雨情報):
``apply_relay(state, report, areas, region=…)`` takes one key's :class:`OfficialState`, a report value
(:mod:`streams.official.kinds`) and the pack's JMA tables, and returns the new state and the messages. No clock,
no I/O: the same reports in the same order always give the same alerts and ids.

* **気象警報・注意報** (VPWW53, VPWW54 H27, VPWW55–61 R06; rule ``jma_warning``): one alert per 市町村等 code
  and hazard (大雨, 土砂災害, 洪水, 暴風 …), its level the kind in effect (注意報 1, 警報 2, 危険警報 3, 特別警報 4),
  ``event`` JMA's kind name verbatim (``レベル３大雨警報``). ALERT when a kind comes into effect (発表, or 継続
  of a report seen mid-event: reconciled), UPDATE when the kind changes (escalated, de-escalated, or 切替 at the
  same grade), CANCEL on 解除 or when the hazard is no longer listed for the area (an R06 report only speaks
  for its own hazard family). **De-duplication**: every generation (VPWW53, VPWW54, R06) keeps its own view of
  each (area, hazard); the alert follows the highest grade any of them holds (R06 first on a tie) and is
  cancelled only when none holds one: a warning another report still carries is never dropped. Reports apply
  in order per generation, family and 府県予報区 (``OfficialState.lasts``).
* **地震** (VXSE51/52/53; rule ``jma_earthquake``; key ``地震|<EventID>``): one alert per municipality (a
  designated city's wards one by one), ``level`` JMA's intensity class as written (``1`` … ``4``, ``5-``, ``5+``,
  ``6-``, ``6+``, ``7``); VXSE53 by 市町村等, VXSE51 by 地震情報／細分区域 through the pack's table; a later report of
  the same EventID updates the alert; it ends by itself (``expires``, 24 h by default). Intensities below the
  pack's minimum are not relayed. VXSE52 (hypocentre only) and a 遠地地震 are one alert for the prefecture's
  topic only (sharing INTERNAL).
* **津波** (VTSE41/51/52; rule ``jma_tsunami``; key ``津波|<EventID>``): one alert per 津波予報区 of the pack's
  coast (its coastal municipalities), ``event`` the kind (大津波警報 / 津波警報 / 津波注意報), upgraded and
  downgraded by VTSE41, cancelled when the area falls to 津波予報 or 解除 or is no longer listed; VTSE51 and
  VTSE52 update the text of the open alerts (arrival, heights, observations).
* **竜巻注意情報** (VPHW50/51; rule ``jma_tornado``): one alert per 一次細分区域 issued (its municipalities through
  the pack's hierarchy), ending at the report's 有効期限 (Head/ValidDateTime); a later report extends it.

InfoType 訂正 of the last report applied applies again (changes only); 取消 cancels the alerts the withdrawn
report raised. 訓練 / 試験 reports have keys and alert ids of their own and never reach municipal or public topics
(:func:`streams.kernel.alerts.topics_for_alert`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from streams.kernel.alerts import Level, Status, Transition, alert_id_for, references_of
from streams.kernel.region import OfficialSettings
from streams.official import quake as jq
from streams.official import tornado as jt
from streams.official import tsunami as js
from streams.official import warnings as jw
from streams.official.head import ReportHead
from streams.official.lifecycle import (
    APPLIED,
    DUPLICATE,
    NOTHING_TO_WITHDRAW,
    OLDER,
    SUPERSEDED,
    UNKNOWN_AREA,
    WITHDRAWN,
    OfficialState,
    OpenAlert,
)
from streams.official.quake import QuakeReport
from streams.official.report import STATUSES, ReportError, report_key
from streams.official.tornado import TornadoReport
from streams.official.tsunami import TsunamiReport
from streams.official.warnings import WarningReport
from streams.packs.jma_areas import OTHER, OWN, JmaAreas, Resolved

RelayReport = WarningReport | QuakeReport | TsunamiReport | TornadoReport

WARNING_RULE, QUAKE_RULE, TSUNAMI_RULE, TORNADO_RULE = "jma_warning", "jma_earthquake", "jma_tsunami", "jma_tornado"
RELAY_RULES = (WARNING_RULE, QUAKE_RULE, TSUNAMI_RULE, TORNADO_RULE)
QUAKE_KEY, TSUNAMI_KEY = "地震", "津波"
HYPOCENTRE = "hypocentre"  # the subject of a hypocentre-only alert (VXSE52, 遠地地震)
PUBLIC, INTERNAL = "PUBLIC", "INTERNAL"

# A generation's preference when two hold the same grade (R06 names the 警戒レベル)
GENERATION_ORDER = {"R06": 3, "VPWW54": 2, "VPWW53": 1}
GRADE_NAMES = {grade: name for name, grade in jw.GRADES.items()}


# What a pack sets for relayed reports (region.yaml ``official:``): the lowest intensity pushed to
# municipalities (JMA's notation) and how long an earthquake alert stays before it ends by itself.
RelaySettings = OfficialSettings
DEFAULT_SETTINGS = OfficialSettings()


# -- levels ----------------------------------------------------------------------------------------------------
def warning_level_of(grade: int, warning_level: int | None) -> Level:
    """A 気象警報・注意報's level: its grade, with CAP severity and urgency from the 警戒レベル it carries (or, for
    kinds without one, from the grade)."""
    by_level = {
        5: ("Extreme", "Immediate"),
        4: ("Severe", "Immediate"),
        3: ("Severe", "Expected"),
        2: ("Moderate", "Expected"),
    }
    by_grade = {
        4: ("Extreme", "Immediate"),
        3: ("Severe", "Immediate"),
        2: ("Severe", "Expected"),
        1: ("Minor", "Expected"),
    }
    severity, urgency = by_level[warning_level] if warning_level in by_level else by_grade[grade]
    return Level(GRADE_NAMES[grade], grade, severity, urgency, "Likely", warning_level=warning_level)


def intensity_rank(max_int: str) -> int:
    """1 for 震度1 … 9 for 震度7 (JMA's classes in order)."""
    return jq.INTENSITIES.index(max_int) + 1


def quake_level(max_int: str, name: str = "") -> Level:
    """An intensity as a level: its name JMA's class as written (or JMA's condition, 震度５弱以上未入電)."""
    rank = intensity_rank(max_int)
    severity = "Extreme" if rank >= 7 else "Severe" if rank >= 5 else "Moderate" if rank >= 3 else "Minor"
    urgency = "Immediate" if rank >= 5 else "Expected"
    return Level(name or max_int, rank, severity, urgency, "Observed")


HYPOCENTRE_LEVEL = Level("震源", 1, "Unknown", "Unknown", "Observed")
TSUNAMI_LEVELS = {
    3: Level("大津波警報", 3, "Extreme", "Immediate", "Likely"),
    2: Level("津波警報", 2, "Severe", "Immediate", "Likely"),
    1: Level("津波注意報", 1, "Moderate", "Immediate", "Likely"),
}
TORNADO_LEVEL = Level("竜巻注意情報", 1, "Severe", "Immediate", "Possible")
TORNADO_SIGHTED_LEVEL = Level("竜巻注意情報", 1, "Severe", "Immediate", "Likely")


# -- what a report wants ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Want:
    """What a report says of one subject (an area, an area and hazard, a municipality): the level it stands at."""

    key: str  # the subject inside the state (OfficialState.open)
    code: str  # JMA's area code, or the municipality's: the record's station_id
    name: str
    municipality_codes: tuple[str, ...]
    level: Level | None  # None: nothing in effect (cancel an open alert)
    event: str = ""
    kind_code: str = ""
    condition: str = ""
    text: str = ""
    expires: int | None = None
    sharing_level: str = PUBLIC
    views: Mapping[str, Sequence[Any]] = field(default_factory=dict)  # warnings: each generation's kind


@dataclass(frozen=True)
class RelayChange:
    """One message of a relayed alert (an :class:`~streams.kernel.alerts.EpisodeChange`)."""

    alert_id: str
    sequence: int
    transition: Transition
    references: str | None
    references_observed_at: int | None
    rule: str
    level: Level  # for CLEARED, the level that was cleared
    rank: int  # 0 when cleared
    observed_at: int  # the report's ReportDateTime
    expires: int | None
    want: Want
    head: ReportHead

    @property
    def msg_type(self) -> str:
        return self.transition.msg_type


@dataclass(frozen=True)
class RelayOutcome:
    state: OfficialState
    transitions: list[RelayChange]
    outcome: str


def head_of(report: RelayReport) -> ReportHead:
    return report.head


def rule_of(report: RelayReport) -> str:
    if isinstance(report, WarningReport):
        return WARNING_RULE
    if isinstance(report, QuakeReport):
        return QUAKE_RULE
    if isinstance(report, TsunamiReport):
        return TSUNAMI_RULE
    return TORNADO_RULE


def relay_key(report: RelayReport) -> str:
    """The Kafka and state key: one event's reports together (an earthquake's VXSE51–53 share ``地震|<EventID>``,
    a tsunami's VTSE41/51/52 ``津波|<EventID>``; warnings, without EventID, one key per region)."""
    head = report.head
    if isinstance(report, QuakeReport):
        return report_key(QUAKE_KEY, head.event_id, head.control_status)
    if isinstance(report, TsunamiReport):
        return report_key(TSUNAMI_KEY, head.event_id, head.control_status)
    return report_key(head.info_kind, head.event_id, head.control_status)


def relay_prefectures(report: RelayReport) -> frozenset[str]:
    """The 2-digit prefectures a report concerns; empty when it may concern any (tsunami: the coast is in the
    packs' tables; a hypocentre alone; a withdrawal without areas): then every region gets it."""
    if isinstance(report, (WarningReport, TornadoReport)):
        return report.prefectures
    if isinstance(report, QuakeReport):
        return frozenset(c.pref_code for c in report.cities) | report.prefectures
    return frozenset()


def source_of(report: RelayReport) -> str:
    """Reports apply in order per source: the Control/Title (a warning's also per 府県予報区)."""
    head = report.head
    if isinstance(report, WarningReport):
        prefecture = next((a.code for a in report.areas if a.level == jw.PREFECTURE), "")
        return f"{head.control_title}|{prefecture}"
    return head.control_title


# -- resolving areas -------------------------------------------------------------------------------------------
class _Resolver:
    def __init__(self, areas: JmaAreas):
        self.areas = areas
        self.skipped = 0
        self.unknown: list[str] = []

    def own(self, found: Resolved, code: str, name: str) -> tuple[str, ...] | None:
        if found.kind == OWN:
            return found.municipality_codes
        if found.kind == OTHER:
            self.skipped += 1
        else:
            self.unknown.append(f"{code} {name}".strip())
        return None

    def check(self) -> None:
        if self.unknown:
            raise ReportError(
                UNKNOWN_AREA, f"area(s) of the pack's prefecture that map to no municipality: {self.unknown[:10]}"
            )

    def finest(self, codes: Sequence[str]) -> list[str]:
        """The municipalities one by one: a designated city's wards rather than the city."""
        wards = self.areas.wards_of_city
        out = [c for c in codes if not (c in wards and any(w in codes for w in wards[c]))]
        return sorted(out)

    def with_city(self, code: str) -> tuple[str, ...]:
        city = self.areas.city_of_ward.get(code)
        return (code, city) if city else (code,)


# -- the step --------------------------------------------------------------------------------------------------
class _Step:
    def __init__(self, state: OfficialState, report: RelayReport, region: str):
        self.report, self.head, self.region = report, report.head, region
        self.rule = rule_of(report)
        self.open = dict(state.open)
        self.transitions: list[RelayChange] = []
        self.levels: dict[str, Level] = {}  # the level of each open alert touched (for its next message)

    def alert_id(self, key: str) -> str:
        status = STATUSES[self.head.control_status]
        suffix = "" if status == Status.ACTUAL else f"-{status.lower()}"
        return alert_id_for(self.region, self.rule, key.replace("|", "-"), self.head.report_datetime, suffix)

    def expire(self) -> None:
        """Alerts past their expiry ended by themselves: nothing to send, forget them."""
        now = self.head.report_datetime
        for key, alert in list(self.open.items()):
            if alert.expires is not None and alert.expires <= now:
                del self.open[key]

    def apply(self, want: Want, level_before: Level | None, *, always: bool = False) -> None:
        """Raise, update or clear the want's alert to what the report says (``always``: an UPDATE even when
        nothing but the report changed)."""
        current = self.open.get(want.key)
        head = self.head
        if want.level is None:
            if current is not None and level_before is not None:
                want = replace(want, event=want.event or current.event)
                cleared = replace(current, sequence=current.sequence + 1, sent_at=head.report_datetime)
                self._emit(current, cleared, Transition.CLEARED, want, level_before)
                del self.open[want.key]
            return
        level = want.level
        if current is None:
            alert = OpenAlert(
                self.alert_id(want.key),
                0,
                head.report_datetime,
                level.rank,
                head.order,
                head.order,
                want.expires,
                event=want.event,
                views=dict(want.views),
            )
            self.open[want.key] = alert
            self._emit(None, alert, Transition.RAISED, want, level)
            return
        changed = current.rank != level.rank or current.event != want.event
        alert = replace(current, views=dict(want.views))
        if not (changed or always):
            self.open[want.key] = alert
            return
        alert = replace(
            alert,
            sequence=current.sequence + 1,
            sent_at=head.report_datetime,
            rank=level.rank,
            last_by=head.order,
            expires=want.expires,
            event=want.event,
        )
        self.open[want.key] = alert
        self._emit(current, alert, Transition.between(current.rank, level.rank), want, level)

    def _emit(self, previous: OpenAlert | None, alert: OpenAlert, kind: Transition, want: Want, level: Level) -> None:
        cleared = kind == Transition.CLEARED
        self.transitions.append(
            RelayChange(
                alert_id=alert.alert_id,
                sequence=alert.sequence,
                transition=kind,
                references=references_of(previous.alert_id, previous.sequence) if previous else None,
                references_observed_at=previous.sent_at if previous else None,
                rule=self.rule,
                level=level,
                rank=0 if cleared else level.rank,
                observed_at=self.head.report_datetime,
                expires=None if cleared else alert.expires,
                want=want,
                head=self.head,
            )
        )


# -- 気象警報・注意報 -------------------------------------------------------------------------------------------
def _view(kind: jw.WarningKind) -> tuple[Any, ...]:
    return (kind.name, kind.code, kind.grade, kind.warning_level, kind.status, kind.condition)


def _effective(views: Mapping[str, Sequence[Any]]) -> tuple[str, Sequence[Any]] | None:
    """The view the alert follows: the highest grade; on a tie R06, then VPWW54, then VPWW53."""
    if not views:
        return None
    return max(views.items(), key=lambda item: (item[1][2], GENERATION_ORDER.get(item[0], 0), item[0]))


def _warning_text(kind: Sequence[Any]) -> str:
    name, _code, _grade, _level, status, condition = kind[:6]
    return f"{name}（{status}{'・' + condition if condition else ''}）"


def _warnings(step: _Step, report: WarningReport, resolver: _Resolver, level_of_open: Mapping[str, Level]) -> None:
    generation = report.generation
    for area in report.municipal:
        codes = resolver.own(resolver.areas.municipal(area.code), area.code, area.name)
        if codes is None:
            continue
        in_effect: dict[str, jw.WarningKind] = {}
        for kind in area.in_effect:
            if kind.hazard in report.hazards and (
                kind.hazard not in in_effect or kind.grade > in_effect[kind.hazard].grade
            ):
                in_effect[kind.hazard] = kind
        for hazard in sorted(report.hazards):
            key = f"{area.code}|{hazard}"
            current = step.open.get(key)
            if current is None and hazard not in in_effect:
                continue
            views = dict(current.views) if current is not None else {}
            if hazard in in_effect:
                views[generation] = _view(in_effect[hazard])
            else:
                views.pop(generation, None)
            chosen = _effective(views)
            if chosen is None:
                want = Want(key, area.code, area.name, codes, None, condition="解除")
            else:
                kind_view = chosen[1]
                level = warning_level_of(int(kind_view[2]), kind_view[3])
                want = Want(
                    key,
                    area.code,
                    area.name,
                    codes,
                    level,
                    event=str(kind_view[0]),
                    kind_code=str(kind_view[1]),
                    condition=str(kind_view[4]),
                    text=_warning_text(kind_view),
                    views=views,
                )
            step.apply(want, level_of_open.get(key))


# -- 地震 ---------------------------------------------------------------------------------------------------------
def _hypocentre_text(report: QuakeReport) -> str:
    words = []
    quake = report.earthquake
    if quake is not None:
        hypo, magnitude = quake.hypocentre, quake.magnitude
        place = hypo.detailed_name or hypo.name
        words.append(f"震源：{place}（{hypo.description}）" if hypo.description else f"震源：{place}")
        if magnitude.description:
            words.append(f"規模：{magnitude.description}")
    words += report.comments
    return "\n".join(words)


def _quake(
    step: _Step, report: QuakeReport, resolver: _Resolver, settings: RelaySettings, level_of_open: Mapping[str, Level]
) -> None:
    text = _hypocentre_text(report)
    expires = report.head.report_datetime + settings.quake_lasts_ms
    minimum = intensity_rank(settings.quake_min_intensity)
    by_municipality: dict[str, tuple[int, str, str, str]] = {}  # code -> (rank, level name, jma code, jma name)

    def note(codes: Sequence[str], max_int: str, condition: str, code: str, name: str) -> None:
        if max_int:
            rank, level_name = intensity_rank(max_int), max_int
        elif condition == jq.NOT_ARRIVED:
            rank, level_name = intensity_rank("5-"), condition
        else:
            return
        if rank < minimum:
            return
        for municipality in resolver.finest(codes):
            if municipality not in by_municipality or rank > by_municipality[municipality][0]:
                by_municipality[municipality] = (rank, level_name, code, name)

    if report.cities:
        for city in report.cities:
            codes = resolver.own(resolver.areas.municipal(city.code), city.code, city.name)
            if codes is not None:
                note(codes, city.max_int, city.condition, city.code, city.name)
    else:
        for area in report.areas:
            codes = resolver.own(resolver.areas.earthquake_area(area.code, area.pref_code), area.code, area.name)
            if codes is not None:
                note(codes, area.max_int, area.condition, area.code, area.name)
    for municipality, (rank, level_name, code, name) in sorted(by_municipality.items()):
        max_int = jq.INTENSITIES[rank - 1]
        level = quake_level(max_int, level_name)
        shown = level_name if level_name == jq.NOT_ARRIVED else f"震度{level_name}"
        want = Want(
            municipality,
            municipality,
            name,
            resolver.with_city(municipality),
            level,
            event=report.head.info_kind,
            kind_code=code,
            condition=shown,
            text=text,
            expires=expires,
        )
        step.apply(want, level_of_open.get(municipality), always=True)
    hypocentre_open = HYPOCENTRE in step.open
    if report.earthquake is not None and (not report.areas or hypocentre_open):
        hypo = report.earthquake.hypocentre
        want = Want(
            HYPOCENTRE,
            hypo.code,
            hypo.detailed_name or hypo.name,
            (),
            HYPOCENTRE_LEVEL,
            event=report.head.info_kind,
            kind_code=hypo.code,
            condition=report.earthquake.magnitude.description,
            text=text,
            expires=expires,
            sharing_level=INTERNAL,
        )
        step.apply(want, level_of_open.get(HYPOCENTRE), always=True)


# -- 津波 ---------------------------------------------------------------------------------------------------------
def _area_text(area: js.ForecastArea, report: TsunamiReport) -> str:
    words = [area.kind_name] if area.kind_name else []
    if area.first_condition:
        words.append(f"第１波：{area.first_condition}")
    if area.max_height is not None and area.max_height.description:
        words.append(f"予想される津波の高さ：{area.max_height.description}")
    for observation in report.observations:
        if observation.area_code != area.code:
            continue
        height = observation.max_height.description if observation.max_height is not None else ""
        seen = "　".join(w for w in (observation.first_initial, height, observation.max_condition) if w)
        words.append(f"{observation.name}{('（' + observation.sensor + '）') if observation.sensor else ''}：{seen}")
    return "\n".join([*words, *report.comments])


def _tsunami(step: _Step, report: TsunamiReport, resolver: _Resolver, level_of_open: Mapping[str, Level]) -> None:
    vtse41 = report.vtse == "VTSE41"
    listed: set[str] = set()
    for area in report.forecast if report.forecast else report.estimations:
        codes = resolver.own(resolver.areas.tsunami_area(area.code), area.code, area.name)
        if codes is None:
            continue
        listed.add(area.code)
        current = step.open.get(area.code)
        if vtse41:
            level = TSUNAMI_LEVELS.get(area.grade)
            want = Want(
                area.code,
                area.code,
                area.name,
                codes,
                level,
                event=area.kind_name if level is not None else "",
                kind_code=area.kind_code,
                condition=area.kind_name,
                text=_area_text(area, report),
            )
            step.apply(want, level_of_open.get(area.code))
        elif current is not None:
            level = level_of_open[area.code]
            want = Want(
                area.code,
                area.code,
                area.name,
                codes,
                level,
                event=current.event,
                kind_code=area.kind_code,
                condition=area.kind_name or "津波情報",
                text=_area_text(area, report),
            )
            step.apply(want, level, always=True)
    if vtse41:
        for code in sorted(step.open):
            if code not in listed:
                codes = resolver.areas.tsunami_area(code).municipality_codes
                step.apply(Want(code, code, code, codes, None, condition="解除"), level_of_open.get(code))


# -- 竜巻注意情報 -------------------------------------------------------------------------------------------------
def _tornado(step: _Step, report: TornadoReport, resolver: _Resolver) -> None:
    sighted = {code for code, _ in report.sighting_areas}
    for area in report.first_areas:
        codes = resolver.own(resolver.areas.forecast(area.code), area.code, area.name)
        if codes is None:
            continue
        seen = area.code in sighted or (report.sighted and not sighted)
        want = Want(
            area.code,
            area.code,
            area.name,
            codes,
            TORNADO_SIGHTED_LEVEL if seen else TORNADO_LEVEL,
            event=jt.INFO_KIND,
            kind_code=area.kind_code,
            condition="目撃情報あり" if seen else area.status,
            expires=report.valid_until,
        )
        step.apply(want, None, always=True)


# -- one report --------------------------------------------------------------------------------------------------
def _levels(state: OfficialState, report: RelayReport) -> dict[str, Level]:
    """The level each open alert stands at, rebuilt from the state (what a CANCEL names)."""
    out: dict[str, Level] = {}
    for key, alert in state.open.items():
        if isinstance(report, WarningReport):
            chosen = _effective(alert.views)
            if chosen is not None:
                out[key] = warning_level_of(int(chosen[1][2]), chosen[1][3])
        elif isinstance(report, QuakeReport):
            out[key] = HYPOCENTRE_LEVEL if key == HYPOCENTRE else quake_level(jq.INTENSITIES[alert.rank - 1], "")
        elif isinstance(report, TsunamiReport):
            level = TSUNAMI_LEVELS.get(alert.rank)
            if level is not None:
                out[key] = level
        else:
            out[key] = TORNADO_LEVEL
    return out


def subject_codes(report: RelayReport, key: str, areas: JmaAreas) -> tuple[str, ...]:
    """The municipalities of an open alert's subject (what its CANCEL reaches), from its key."""
    code = key.split("|")[0]
    if isinstance(report, WarningReport):
        return areas.municipal(code).municipality_codes
    if isinstance(report, QuakeReport):
        return () if key == HYPOCENTRE else _Resolver(areas).with_city(code)
    if isinstance(report, TsunamiReport):
        return areas.tsunami_area(code).municipality_codes
    return areas.forecast(code).municipality_codes


def _withdraw(state: OfficialState, report: RelayReport, areas: JmaAreas, region: str) -> RelayOutcome:
    """取消: cancel the alerts the withdrawn report (same ReportDateTime and Serial) raised."""
    step = _Step(state, report, region)
    levels = _levels(state, report)
    for key, alert in sorted(state.open.items()):
        if alert.raised_by == report.head.order and key in levels:
            codes = subject_codes(report, key, areas)
            sharing = INTERNAL if key == HYPOCENTRE else PUBLIC
            want = Want(key, key.split("|")[0], key, codes, None, condition="取消", sharing_level=sharing)
            step.apply(want, levels[key])
    outcome = WITHDRAWN if step.transitions else NOTHING_TO_WITHDRAW
    return RelayOutcome(replace(state, open=step.open), step.transitions, outcome)


def apply_relay(
    state: OfficialState,
    report: RelayReport,
    areas: JmaAreas,
    *,
    region: str,
    settings: RelaySettings = DEFAULT_SETTINGS,
) -> tuple[RelayOutcome, int]:
    """The key's new state and the messages one report causes, and how many areas of other prefectures it named.

    ReportError (``unknown_area``) when an area of the pack's own prefecture maps to no municipality.
    """
    head = report.head
    if head.info_type == "取消":
        return _withdraw(state, report, areas, region), 0
    source = source_of(report)
    last = state.lasts.get(source)
    if last is not None and head.order <= last:
        if head.info_type != "訂正":
            return RelayOutcome(state, [], DUPLICATE if head.order == last else OLDER), 0
        if head.order != last:
            return RelayOutcome(state, [], SUPERSEDED), 0
    step = _Step(state, report, region)
    step.expire()
    resolver = _Resolver(areas)
    levels = _levels(replace(state, open=step.open), report)
    if isinstance(report, WarningReport):
        _warnings(step, report, resolver, levels)
    elif isinstance(report, QuakeReport):
        _quake(step, report, resolver, settings, levels)
    elif isinstance(report, TsunamiReport):
        _tsunami(step, report, resolver, levels)
    else:
        _tornado(step, report, resolver)
    resolver.check()
    lasts = {**state.lasts, source: max(last, head.order) if last is not None else head.order}
    overall = max(state.last, head.order) if state.last is not None else head.order
    return RelayOutcome(OfficialState(last=overall, open=step.open, lasts=lasts), step.transitions, APPLIED), (
        resolver.skipped
    )


def concerns_pack(report: RelayReport, areas: JmaAreas, state: OfficialState) -> bool:
    """Whether the report is the pack's business: it names an area of the pack (a withdrawal: the key has open
    alerts; a tsunami report naming none of the pack's areas while some are open lifts them)."""
    if report.head.info_type == "取消" or isinstance(report, TsunamiReport) and report.vtse == "VTSE41":
        if state.open:
            return True
    if isinstance(report, WarningReport):
        return any(areas.municipal(a.code).kind != OTHER for a in report.municipal)
    if isinstance(report, QuakeReport):
        if report.cities:
            return any(areas.municipal(c.code).kind != OTHER for c in report.cities)
        if report.areas:
            return any(areas.earthquake_area(a.code, a.pref_code).kind != OTHER for a in report.areas)
        return report.earthquake is not None
    if isinstance(report, TsunamiReport):
        return any(areas.tsunami_area(a.code).kind == OWN for a in (*report.forecast, *report.estimations))
    return any(areas.forecast(a.code).kind != OTHER for a in report.first_areas)
