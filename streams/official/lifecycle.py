"""The lifecycle of relayed official alerts (JMA's reports): a pure state machine per event, in report order.

One state per report key (``InfoKind|EventID``, plus Control/Status for exercises and tests; see
:func:`streams.official.report.report_key`). ``apply_report`` takes the state, a validated report and
its areas resolved for the pack (:func:`targets_of`), and returns the new state and the transitions:

* **Order.** A report applies when it is newer than the last one applied for its key: ReportDateTime
  first, Serial breaks ties (a prefecture's 土砂災害警戒情報 keeps one EventID across its events). A
  duplicate or an older report changes nothing.
* **Reconcile** (土砂災害警戒情報). Each report lists the status of every area: an area under 警戒
  (発表 or 継続) with no open alert gets its ``ALERT`` now — the hub may have started mid-event or
  missed a report; an open alert whose area shows 解除 or なし is cancelled; 解除 or なし for an area
  with nothing open produces nothing; 継続 of an open alert produces nothing.
* **Flood forecasts** (指定河川洪水予報): one alert per forecast area; its level from the kind code's tens
  digit (2x 氾濫注意, 3x 警戒, 4x 危険, 5x 発生 → 警戒レベル 2 / 3 / 4 / 5 相当); every later report
  is an ``UPDATE`` (escalated, de-escalated, or updated at the same level), 1x (解除) a ``CANCEL``.
* **記録的短時間大雨情報**: each report raises a public alert per area that expires one hour after its
  ReportDateTime (no ``CANCEL`` is sent: it ends at ``expires``).
* **InfoType 訂正** replaces the report it corrects (same ReportDateTime and Serial): when that report is
  the last applied, the corrected statuses are reconciled again and the alerts it issued are sent
  again as ``UPDATE``; a correction of a report already superseded changes nothing. **取消** withdraws
  what the report issued: the alerts it raised (still open) are cancelled.

Alert ids are ``<region>-<rule>-<area code>-<ReportDateTime of the raise, JST>`` (plus ``-exercise`` /
``-test``): the same reports in the same order always give the same ids and content.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from streams.kernel.alerts import Level, Status, Transition, alert_id_for, references_of
from streams.kernel.times import HOUR_MS
from streams.official.report import FLOOD, LANDSLIDE, RECORD_RAIN, UNHANDLED_CODE, JmaReport, ReportError
from streams.packs.jma_areas import OTHER, OWN, JmaAreas, Resolved

RULES = {LANDSLIDE: "jma_landslide", FLOOD: "jma_flood", RECORD_RAIN: "jma_record_rain"}
RAISED, ESCALATED, DEESCALATED, UPDATED, CLEARED = (
    Transition.RAISED,
    Transition.ESCALATED,
    Transition.DEESCALATED,
    Transition.UPDATED,
    Transition.CLEARED,
)
RECORD_RAIN_LASTS_MS = HOUR_MS
UNKNOWN_AREA = "unknown_area"

# Outcomes of one report (bosai_official_reports_total{outcome}).
APPLIED, DUPLICATE, OLDER, SUPERSEDED, WITHDRAWN, NOTHING_TO_WITHDRAW, OTHER_PREFECTURE = (
    "applied",
    "duplicate",
    "older",
    "superseded",
    "withdrawn",
    "nothing_to_withdraw",
    "other_prefecture",
)


LANDSLIDE_LEVEL = Level("警戒レベル4相当", 1, "Severe", "Immediate", "Likely", warning_level=4)
FLOOD_LEVELS = {  # by the kind code's tens digit
    2: Level("警戒レベル2相当", 1, "Moderate", "Expected", "Likely", warning_level=2),
    3: Level("警戒レベル3相当", 2, "Severe", "Expected", "Likely", warning_level=3),
    4: Level("警戒レベル4相当", 3, "Severe", "Immediate", "Likely", warning_level=4),
    5: Level("警戒レベル5相当", 4, "Extreme", "Immediate", "Observed", warning_level=5),
}
RECORD_RAIN_LEVEL = Level("記録的短時間大雨", 1, "Severe", "Immediate", "Observed", warning_level=None)
FLOOD_CLEARED = 1  # tens digit of 解除 (code 10)


def level_of(kind: str, rank: int) -> Level:
    if kind == LANDSLIDE:
        return LANDSLIDE_LEVEL
    if kind == RECORD_RAIN:
        return RECORD_RAIN_LEVEL
    return next(level for level in FLOOD_LEVELS.values() if level.rank == rank)


@dataclass(frozen=True)
class OpenAlert:
    """An alert this event has open for one area."""

    alert_id: str
    sequence: int
    sent_at: int  # ReportDateTime of its last message (CAP references need it)
    rank: int
    raised_by: tuple[int, int]  # (ReportDateTime, Serial) of the report that raised it
    last_by: tuple[int, int]  # … of the report behind its last message
    expires: int | None = None
    event: str = ""  # relayed kinds (streams.official.relay): the event of its last message
    views: Mapping[str, Sequence[Any]] = field(default_factory=dict)  # warnings: each generation's kind in effect

    def to_json(self) -> list[Any]:
        row: list[Any] = [self.alert_id, self.sequence, self.sent_at, self.rank, *self.raised_by, *self.last_by]
        row.append(self.expires)
        if self.event or self.views:
            row += [self.event, {k: list(v) for k, v in sorted(self.views.items())}]
        return row

    @classmethod
    def from_json(cls, v: Sequence[Any]) -> OpenAlert:
        event: str = v[9] if len(v) > 9 else ""
        found: Mapping[str, Sequence[Any]] = v[10] if len(v) > 10 else {}
        views = {k: tuple(x) for k, x in found.items()}
        return cls(v[0], v[1], v[2], v[3], (v[4], v[5]), (v[6], v[7]), v[8], event, views)


@dataclass(frozen=True)
class OfficialState:
    """What one event remembers: the last report applied and the alerts open per area (JSON in a table)."""

    last: tuple[int, int] | None = None
    open: Mapping[str, OpenAlert] = field(default_factory=dict)
    lasts: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # relayed kinds: the last report per source

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "last": list(self.last) if self.last else None,
            "open": {code: a.to_json() for code, a in sorted(self.open.items())},
        }
        if self.lasts:
            doc["lasts"] = {source: list(order) for source, order in sorted(self.lasts.items())}
        return doc

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | bytes | None) -> OfficialState:
        if not doc:
            return cls()
        document: Mapping[str, Any] = json.loads(doc) if isinstance(doc, (bytes, bytearray)) else doc
        last = document.get("last")
        return cls(
            last=(last[0], last[1]) if last else None,
            open={code: OpenAlert.from_json(v) for code, v in (document.get("open") or {}).items()},
            lasts={source: (o[0], o[1]) for source, o in (document.get("lasts") or {}).items()},
        )


@dataclass(frozen=True)
class Target:
    """An area a report speaks of, resolved for the pack: what the report wants for it."""

    code: str  # JMA area code (市町村等, forecast area, or 府県予報区・細分区域)
    name: str
    municipality_codes: tuple[str, ...]
    condition: str  # JMA's word for it in this report: 発表, 継続, 解除, なし, or the flood kind's name
    rank: int  # the level rank the report wants (0: none)


@dataclass(frozen=True)
class AreaChange:
    """One message of a relayed alert for one of JMA's areas."""

    alert_id: str
    sequence: int
    transition: Transition
    references: str | None
    references_observed_at: int | None
    rule: str
    level: Level  # for CLEARED, the level that was cleared
    rank: int  # 0 when cleared
    target: Target
    observed_at: int  # the report's ReportDateTime
    expires: int | None
    report: JmaReport

    @property
    def msg_type(self) -> str:
        return self.transition.msg_type


@dataclass(frozen=True)
class Outcome:
    state: OfficialState
    transitions: list[AreaChange]
    outcome: str


def _resolve_all(
    codes: Sequence[tuple[str, str]], resolve: Callable[[str], Resolved], skipped: list[str]
) -> dict[str, tuple[str, ...]]:
    """Own areas' municipality codes; other prefectures' codes into skipped; unknown own areas raise."""
    own: dict[str, tuple[str, ...]] = {}
    unknown: list[str] = []
    for code, name in codes:
        found = resolve(code)
        if found.kind == OWN:
            own[code] = found.municipality_codes
        elif found.kind == OTHER:
            skipped.append(code)
        else:
            unknown.append(f"{code} {name}".strip())
    if unknown:
        raise ReportError(UNKNOWN_AREA, f"area(s) of the pack's prefecture that map to no municipality: {unknown}")
    return own


def targets_of(report: JmaReport, areas: JmaAreas) -> tuple[list[Target], int]:
    """The report's areas of the pack's prefecture as targets, and how many areas of others were skipped.

    ReportError for a status or code the hub does not handle, or an own area that maps to no municipality.
    """
    skipped: list[str] = []
    if report.flood is not None:
        flood = report.flood
        tens = int(flood.kind_code) // 10 if flood.kind_code.isdigit() else -1
        if tens != FLOOD_CLEARED and tens not in FLOOD_LEVELS:
            raise ReportError(UNHANDLED_CODE, f"flood forecast kind code {flood.kind_code!r} ({flood.kind_name})")
        own = _resolve_all([(c.code, c.name) for c in flood.cities], areas.municipal, skipped)
        own_prefecture = any(areas.forecast(a).kind == OWN for a in flood.prefecture_areas)
        if not own and not own_prefecture:
            return [], len(skipped)
        codes = tuple(sorted({c for cs in own.values() for c in cs}))
        rank = 0 if tens == FLOOD_CLEARED else FLOOD_LEVELS[tens].rank
        return [Target(flood.area_code, flood.area_name, codes, flood.kind_name, rank)], len(skipped)
    handled = ("発表", "継続", "解除", "なし") if report.info_kind == LANDSLIDE else ("発表", "なし")
    bad = [f"{a.code}: {a.status or a.kind_code!r}" for a in report.areas if a.status not in handled]
    if bad:
        raise ReportError(UNHANDLED_CODE, f"{report.info_kind} area status(es) {bad[:5]} (handled: {handled})")
    resolve = areas.municipal if report.info_kind == LANDSLIDE else areas.forecast
    own = _resolve_all([(a.code, a.name) for a in report.areas], resolve, skipped)
    targets = [
        Target(a.code, a.name, own[a.code], a.status, 1 if a.status in ("発表", "継続") else 0)
        for a in report.areas
        if a.code in own
    ]
    return targets, len(skipped)


def _alert_id(region: str, report: JmaReport, code: str) -> str:
    suffix = "" if report.status == Status.ACTUAL else f"-{report.status.lower()}"
    return alert_id_for(region, RULES[report.info_kind], code, report.report_datetime, suffix)


class _Step:
    """Builds the transitions and the open alerts of one report."""

    def __init__(self, state: OfficialState, report: JmaReport, region: str):
        self.report, self.region = report, region
        self.open = dict(state.open)
        self.transitions: list[AreaChange] = []
        self.kind = report.info_kind
        self.expires = report.report_datetime + RECORD_RAIN_LASTS_MS if self.kind == RECORD_RAIN else None

    def raise_(self, target: Target) -> None:
        report = self.report
        alert = OpenAlert(
            _alert_id(self.region, report, target.code),
            0,
            report.report_datetime,
            target.rank,
            report.order,
            report.order,
            self.expires,
        )
        self.open[target.code] = alert
        self._emit(alert, RAISED, target, target.rank, None)

    def change(self, current: OpenAlert, target: Target) -> None:
        """An UPDATE of an open alert to the target's rank (escalated, de-escalated or same level)."""
        report = self.report
        kind = Transition.between(current.rank, target.rank)
        alert = replace(
            current,
            sequence=current.sequence + 1,
            sent_at=report.report_datetime,
            rank=target.rank,
            last_by=report.order,
            expires=self.expires if self.kind == RECORD_RAIN else current.expires,
        )
        self.open[target.code] = alert
        self._emit(alert, kind, target, target.rank, current)

    def clear(self, current: OpenAlert, target: Target) -> None:
        self.open.pop(target.code, None)
        alert = replace(current, sequence=current.sequence + 1, sent_at=self.report.report_datetime)
        self._emit(alert, CLEARED, target, current.rank, current)

    def _emit(self, alert: OpenAlert, kind: Transition, target: Target, rank: int, previous: OpenAlert | None) -> None:
        self.transitions.append(
            AreaChange(
                alert_id=alert.alert_id,
                sequence=alert.sequence,
                transition=kind,
                references=references_of(previous.alert_id, previous.sequence) if previous else None,
                references_observed_at=previous.sent_at if previous else None,
                rule=RULES[self.kind],
                level=level_of(self.kind, rank),
                rank=0 if kind == CLEARED else rank,
                target=target,
                observed_at=self.report.report_datetime,
                expires=alert.expires if kind != CLEARED else None,
                report=self.report,
            )
        )


def _reconcile(step: _Step, targets: Sequence[Target], corrected: tuple[int, int] | None) -> None:
    """Landslide and flood alerts: raise, update or clear each target's alert to what the report says."""
    for target in targets:
        current = step.open.get(target.code)
        if target.rank > 0 and current is None:
            step.raise_(target)
        elif target.rank == 0 and current is not None:
            step.clear(current, target)
        elif target.rank > 0 and current is not None:
            same = target.rank == current.rank
            if step.kind == FLOOD or not same or (corrected is not None and current.last_by == corrected):
                step.change(current, target)


def _record_rain(step: _Step, targets: Sequence[Target], corrected: tuple[int, int] | None) -> None:
    """記録的短時間大雨情報: an alert per area issued; a correction updates or withdraws its own alerts."""
    now = step.report.report_datetime
    for code, alert in list(step.open.items()):
        if alert.expires is not None and alert.expires <= now:
            del step.open[code]  # ended by itself at expires: nothing to send
    for target in targets:
        current = step.open.get(target.code)
        mine = current if current is not None and corrected is not None and current.last_by == corrected else None
        if target.rank > 0 and mine is not None:
            step.change(mine, target)
        elif target.rank > 0:
            step.raise_(target)
        elif mine is not None:
            step.clear(mine, target)


def _withdraw(state: OfficialState, report: JmaReport, targets: Sequence[Target], region: str) -> Outcome:
    """取消: cancel the alerts the withdrawn report (same ReportDateTime and Serial) raised."""
    step = _Step(state, report, region)
    by_code = {t.code: t for t in targets}
    for code, alert in sorted(state.open.items()):
        if alert.raised_by == report.order:
            target = by_code.get(code) or Target(code, code, (), "取消", 0)
            step.clear(alert, replace(target, condition="取消", rank=0))
    outcome = WITHDRAWN if step.transitions else NOTHING_TO_WITHDRAW
    return Outcome(replace(state, open=step.open), step.transitions, outcome)


def apply_report(state: OfficialState, report: JmaReport, targets: Sequence[Target], *, region: str) -> Outcome:
    """The event's new state and the messages one report causes (see the module docstring)."""
    if report.info_type == "取消":
        return _withdraw(state, report, targets, region)
    corrected = None
    if state.last is not None and report.order <= state.last:
        if report.info_type != "訂正":
            return Outcome(state, [], DUPLICATE if report.order == state.last else OLDER)
        if report.order != state.last:
            return Outcome(state, [], SUPERSEDED)
        corrected = report.order
    step = _Step(state, report, region)
    if report.info_kind == RECORD_RAIN:
        _record_rain(step, targets, corrected)
    else:
        _reconcile(step, targets, corrected)
    last = max(state.last, report.order) if state.last is not None else report.order
    return Outcome(OfficialState(last=last, open=step.open), step.transitions, APPLIED)
