"""The English words of a CAP message (its ``en-US`` info block, beside the ``ja-JP`` one).

The hub's own threshold alerts are translated from the rule files' ``event_en`` and the stations' English
names (``stations.csv`` ``name_en``). JMA's reports are JMA's words: they stay Japanese, under an English
headline that says they are JMA's information relayed, 出典：気象庁 / Source: JMA. Observed values are never
worded as warnings or forecasts (気象業務法): the hub's headline says what was observed, and that it is not a
JMA warning.

Pure: :class:`CapEnglish` is built from region packs (:meth:`CapEnglish.of`) and passed to
:func:`streams.delivery.cap.render`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from streams.kernel.messages import AvroRecord

if TYPE_CHECKING:
    from streams.kernel.region import RegionPack

SOURCE_JMA = "出典：気象庁 / Source: JMA"
NOT_JMA = "observed by the hub's gauges; not a warning of the Japan Meteorological Agency"
JMA_KINDS_EN = {
    "土砂災害警戒情報": "Landslide Alert Information",
    "指定河川洪水予報": "Flood Forecast for a Designated River",
    "記録的短時間大雨情報": "Record Short-Duration Heavy Rain Information",
    "気象警報・注意報": "Weather Warning or Advisory",
    "震度速報": "Seismic Intensity Information",
    "震源速報": "Earthquake Hypocentre Information",
    "地震情報": "Earthquake Information (hypocentre and intensities)",
    "津波警報・注意報・予報": "Tsunami Warning, Advisory or Forecast",
    "津波情報": "Tsunami Information",
    "竜巻注意情報": "Tornado Alert Information",
}
INSTRUCTIONS_EN = {
    2: "Alert level 2 equivalent: check evacuation routes and places on your hazard map.",
    3: "Alert level 3 equivalent: the elderly and others who need time should evacuate from dangerous places.",
    4: "Alert level 4 equivalent: everyone evacuate from dangerous places.",
    5: "Alert level 5 equivalent: danger to life; secure your safety immediately.",
}


@dataclass(frozen=True)
class CapEnglish:
    """English names of the packs' events and stations."""

    events: Mapping[tuple[str, str, str], str] = field(default_factory=dict)  # (region, rule, level) -> event_en
    stations: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (region, station id) -> name_en

    @classmethod
    def of(cls, packs: Iterable[RegionPack]) -> CapEnglish:
        events, stations = {}, {}
        for pack in packs:
            for rule in pack.rules.rules:
                for level in rule.levels:
                    events[(pack.name, rule.id, level.name)] = level.event_en
            for station_id, station in pack.stations.items():
                stations[(pack.name, station_id)] = station.name_en
        return cls(events, stations)

    def event(self, alert: AvroRecord) -> str:
        found = self.events.get((alert["region"], alert["rule"], alert["level"]))
        return found or f"{alert['rule']} {alert['level']}".replace("_", " ")

    def headline(self, alert: AvroRecord, value: str) -> str:
        station = self.stations.get((alert["region"], alert["station_id"])) or f"station {alert['station_id']}"
        cleared = " cleared" if alert["msg_type"] == "CANCEL" else ""
        codes = ", ".join(alert["municipality_codes"])
        return f"{station} ({codes}): {self.event(alert)}{cleared}, {value} ({NOT_JMA})"

    def description(self, alert: AvroRecord, value: str, threshold: str, sent: str) -> str:
        return (
            f"{self.event(alert)}: {value} (threshold {threshold}) at station {alert['station_id']}, {sent}; "
            f"{alert['transition'].lower()}. {NOT_JMA[0].upper()}{NOT_JMA[1:]}."
        )


def relayed_event(official: AvroRecord) -> str:
    kind = str(official["info_kind"])
    return JMA_KINDS_EN.get(kind, kind)


def relayed_headline(official: AvroRecord, cancelled: bool) -> str:
    """English headline of a relayed JMA report: whose information it is, of which kind, and where."""
    area = official.get("area_name") or ""
    state = " (cancelled)" if cancelled else ""
    return (
        f"Japan Meteorological Agency's information, relayed: {relayed_event(official)}{state} "
        f"({official['info_kind']}) for {area}. The text is JMA's, in Japanese. {SOURCE_JMA}"
    )


def relayed_description(japanese: str) -> str:
    """JMA's own words, unchanged, with the credit in both languages."""
    return f"{japanese}\n\n(The Japan Meteorological Agency's text, relayed unchanged. {SOURCE_JMA})"
