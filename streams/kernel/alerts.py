"""The alert model, one for the hub's own alerts and for JMA's relayed ones (pure).

Every alert is an *episode* with an id, told in messages numbered by ``sequence``: raised (CAP ``Alert``),
escalated / de-escalated / updated (``Update``), cleared (``Cancel``). This module is the one place that says
what a level is (:class:`Level`), what kinds of change there are (:class:`Transition`), how an episode's id
is made (:func:`alert_id_for`) and what record an alert topic carries (:meth:`Alert.record`, the Avro
``Alert`` schema): both pipelines build an :class:`Alert` and call it, nobody builds the record by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from streams.kernel.messages import AvroRecord
from streams.kernel.times import jst, jst_iso


class Transition(StrEnum):
    """What one message of an episode does (the ``transition`` field; stored as these words in states)."""

    RAISED = "RAISED"
    ESCALATED = "ESCALATED"
    DEESCALATED = "DEESCALATED"
    UPDATED = "UPDATED"  # the same level said again with new content (a relayed report's later issue)
    CLEARED = "CLEARED"

    @property
    def msg_type(self) -> str:
        """CAP's msgType: Alert, Update or Cancel (upper case, as the Avro enum spells it)."""
        return MSG_TYPE[self]

    @classmethod
    def between(cls, old_rank: int, new_rank: int) -> Transition:
        """The transition from one level rank to another (0 = no alert)."""
        if old_rank == 0:
            return cls.RAISED
        if new_rank == 0:
            return cls.CLEARED
        if new_rank > old_rank:
            return cls.ESCALATED
        if new_rank < old_rank:
            return cls.DEESCALATED
        return cls.UPDATED


MSG_TYPE = {
    Transition.RAISED: "ALERT",
    Transition.ESCALATED: "UPDATE",
    Transition.DEESCALATED: "UPDATE",
    Transition.UPDATED: "UPDATE",
    Transition.CLEARED: "CANCEL",
}


# msg_type as CAP 1.2 spells msgType
CAP_MSG_TYPE = {"ALERT": "Alert", "UPDATE": "Update", "CANCEL": "Cancel"}


class Source(StrEnum):
    HUB = "hub"  # the hub's own threshold alerts on observations (never worded as 警報 or forecasts)
    JMA = "jma"  # JMA's reports, relayed as JMA's (出典：気象庁)


class Status(StrEnum):
    """CAP status: an exercise (訓練) or test (試験) never reaches a municipality's or the public topics as real."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    TEST = "Test"


# rules.yaml's sharing levels and the Alert record's (CAP's "scope"-like) sharing level
SHARING = {"public": "PUBLIC", "municipal": "MUNICIPAL", "internal": "INTERNAL"}


@dataclass(frozen=True)
class Level:
    """One level of an alert, lowest first (rank 1), with its CAP grading.

    The hub's rules define theirs (``rules.yaml``: JMA's rain bands, river stages → 警戒レベル相当); relayed
    reports use JMA's (警戒レベル4相当 …). ``event`` is CAP's event (非常に激しい雨); relayed alerts name
    theirs from the report instead (:attr:`Alert.event`).
    """

    name: str
    rank: int
    severity: str
    urgency: str
    certainty: str
    event: str = ""
    event_en: str = ""
    warning_level: int | None = None  # the 5-level 警戒レベル this level stands for, if any
    threshold: float | None = None  # band/cumulative rules: the value that enters the level
    stage: str | None = None  # river_stage rules: which of the gauge's own stages


def alert_id_for(region: str, rule_id: str, subject: str, episode_start: int, suffix: str = "") -> str:
    """Stable id of an episode, from what it is about and the event time that opened it.

    ``subject`` is the station (the hub's alerts) or JMA's area code (relayed ones); e.g.
    ``tochigi-rain_1h-41277-20230904T1500JST``. The same data in the same order always gives the same ids.
    """
    start = jst(episode_start).strftime("%Y%m%dT%H%M%S").removesuffix("00")
    return f"{region}-{rule_id}-{subject}-{start}JST{suffix}"


def references_of(alert_id: str, sequence: int) -> str:
    """What a later message of an episode refers to: its previous message."""
    return f"{alert_id}/{sequence}"


@dataclass(frozen=True)
class SourceReading:
    """A measurement an alert rests on (the observed value, or a gauge level a flood forecast reports)."""

    station_id: str
    observed_at: int
    quantity: str
    value: float
    unit: str


class EpisodeChange(Protocol):
    """What a lifecycle's change says of its episode (a station's change, an area's change)."""

    @property
    def alert_id(self) -> str: ...
    @property
    def sequence(self) -> int: ...
    @property
    def transition(self) -> Transition: ...
    @property
    def references(self) -> str | None: ...
    @property
    def references_observed_at(self) -> int | None: ...
    @property
    def level(self) -> Level: ...
    @property
    def rank(self) -> int: ...
    @property
    def observed_at(self) -> int: ...


@dataclass(frozen=True)
class Alert:
    """One message of an alert episode, as every output (topics, CAP, Atom, webhooks, Orion, the map) sees it."""

    alert_id: str
    sequence: int
    transition: Transition
    references: str | None
    references_observed_at: int | None  # event time of the referenced message (CAP references need it)
    region: str
    prefecture_code: str
    rule: str
    level: Level  # the level reached; for CLEARED, the level that was cleared
    rank: int  # 0 when cleared
    event: str  # CAP event: the level's (hub) or JMA's kind name (relayed)
    headline: str
    sharing_level: str  # PUBLIC | MUNICIPAL | INTERNAL
    subject_id: str  # the station (hub) or JMA's area code (relayed): the record's station_id
    observed_at: int  # the reading's event time, or the report's ReportDateTime
    municipality_codes: tuple[str, ...]
    area_description: str
    point: tuple[float, float, float | None] | None = None  # (lat, lon, alt_m) of the station
    hazard_zone_ids: tuple[str, ...] = ()
    value: float | None = None
    unit: str = ""
    threshold: float | None = None
    source_readings: tuple[SourceReading, ...] = ()
    source: Source = Source.HUB
    status: Status = Status.ACTUAL
    expires: int | None = None
    official: AvroRecord | None = None  # what JMA's report says (the Avro OfficialInfo record)

    @classmethod
    def of_change(cls, change: EpisodeChange, **fields: Any) -> Alert:
        """The Alert of a lifecycle change: its episode's part from the change, the rest from ``fields``."""
        return cls(
            alert_id=change.alert_id,
            sequence=change.sequence,
            transition=change.transition,
            references=change.references,
            references_observed_at=change.references_observed_at,
            level=change.level,
            rank=change.rank,
            observed_at=change.observed_at,
            **fields,
        )

    @property
    def msg_type(self) -> str:
        return self.transition.msg_type

    @property
    def cleared(self) -> bool:
        return self.transition == Transition.CLEARED

    def record(self) -> AvroRecord:
        """The Avro ``Alert`` record (``avro/Alert.avsc``): the one place it is built."""
        level, cleared = self.level, self.cleared
        return {
            "alert_id": self.alert_id,
            "sequence": self.sequence,
            "msg_type": self.msg_type,
            "transition": str(self.transition),
            "references": self.references,
            "references_observed_at": self.references_observed_at,
            "region": self.region,
            "prefecture_code": self.prefecture_code,
            "rule": self.rule,
            "level": level.name,
            "level_rank": self.rank,
            "warning_level": level.warning_level,
            "event": self.event,
            "headline": self.headline,
            "severity": "Minor" if cleared else level.severity,
            "urgency": "Past" if cleared else level.urgency,
            "certainty": level.certainty,
            "sharing_level": self.sharing_level,
            "station_id": self.subject_id,
            "observed_at": self.observed_at,
            "value": None if self.value is None else float(self.value),
            "unit": self.unit,
            "threshold": self.threshold,
            "area": {
                "description": self.area_description,
                "point": None
                if self.point is None
                else {"lat": self.point[0], "lon": self.point[1], "alt_m": self.point[2]},
                "hazard_zone_ids": list(self.hazard_zone_ids),
            },
            "municipality_codes": list(self.municipality_codes),
            "source": str(self.source),
            "status": str(self.status),
            "expires": self.expires,
            "official": dict(self.official) if self.official is not None else None,
            "source_readings": [
                {
                    "station_id": r.station_id,
                    "observed_at": r.observed_at,
                    "quantity": r.quantity,
                    "value": float(r.value),
                    "unit": r.unit,
                }
                for r in self.source_readings
            ],
        }


def topics_for_alert(
    alert_topic: str,
    municipal_topics: Mapping[str, str],
    public_topic: str,
    codes: Sequence[str],
    *,
    sharing_level: str,
    status: str = Status.ACTUAL,
) -> tuple[str, ...]:
    """Where an alert goes: always the prefecture's topic; its municipalities' topics when shared with them
    (PUBLIC or MUNICIPAL); the public topic when PUBLIC. Exercises and tests stay on the prefecture's topic."""
    if status != Status.ACTUAL or sharing_level == "INTERNAL":
        return (alert_topic,)
    municipal = tuple(municipal_topics[c] for c in codes if c in municipal_topics)
    return (alert_topic, *municipal, public_topic) if sharing_level == "PUBLIC" else (alert_topic, *municipal)


def alert_line(record: Mapping[str, Any], topics: Iterable[str]) -> dict[str, Any]:
    """One line of ``bosai replay --alerts-out`` (and of ``bosai history alerts``): the alert event as the hub
    emitted it (its Avro record), with the topics it was delivered to.

    ``source`` tells the hub's own alerts (hub) from relayed official reports (jma); for these,
    ``observed_at`` is the report's ReportDateTime and ``official`` names the report.
    """
    official = record.get("official")
    return {
        "source": record.get("source", "hub"),
        "alert_id": record["alert_id"],
        "sequence": record["sequence"],
        "msg_type": record["msg_type"],
        "transition": record["transition"],
        "references": record["references"],
        "station_id": record["station_id"],
        "rule": record["rule"],
        "level": record["level"],
        "level_rank": record["level_rank"],
        "event": record["event"],
        "warning_level": record.get("warning_level"),
        "severity": record["severity"],
        "urgency": record["urgency"],
        "certainty": record["certainty"],
        "sharing_level": record["sharing_level"],
        "observed_at": jst_iso(record["observed_at"]),
        "value": record["value"],
        "unit": record["unit"],
        "threshold": record["threshold"],
        "municipalities": record["municipality_codes"],
        "headline": record["headline"],
        "status": record.get("status", "Actual"),
        "expires": jst_iso(record["expires"]) if record.get("expires") is not None else None,
        "official": {
            "info_kind": official["info_kind"],
            "event_id": official["event_id"],
            "serial": official["serial"],
            "info_type": official["info_type"],
            "condition": official.get("condition", ""),
            "credit": official["credit"],
        }
        if official
        else None,
        "topics": sorted(topics),
    }
