"""Domain values shared by the pure core: stations, municipalities, hazard zones, locations.

Frozen dataclasses and enums only; nothing here imports Kafka, Avro or Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypedDict

# Every quantity a reading may carry, and its unit (the Avro Measurement's quantity/unit pair).
QUANTITY_UNITS = {
    "precipitation_10min": "mm",  # 10-minute rainfall (前10分間降水量, AMeDAS 10-minute data)
    "precipitation_1h": "mm",  # 1-hour rainfall (前1時間降水量)
    "precipitation_3h": "mm",
    "precipitation_24h": "mm",  # 24-hour rainfall (前24時間降水量)
    "precipitation_increment": "mm",  # rainfall since the sensor's previous report
    "water_level": "m",  # river water level (水位) above the gauge's zero
}


class RuleOverride(TypedDict, total=False):
    """A station's override of one rule (``stations.yaml``'s ``rules:``; validated by the pack loader)."""

    enabled: bool
    hysteresis: float
    thresholds: dict[str, float]  # level name -> the value that enters it


# Japan's extent in WGS84 degrees, rounded out: Okinotorishima .. Etorofu, Yonaguni .. Minamitorishima.
JAPAN_LAT = (20.0, 46.0)
JAPAN_LON = (122.0, 154.0)


def in_japan(lat: float, lon: float) -> bool:
    return JAPAN_LAT[0] <= lat <= JAPAN_LAT[1] and JAPAN_LON[0] <= lon <= JAPAN_LON[1]


# Who may see a station's readings (データ共有の必要度, as for alerts): public (anyone, e.g. on the
# residents' map), municipal (the prefecture and municipalities), internal (the prefecture only).
# A station file that does not say is internal: nothing is published by accident.
STATION_SHARING = ("public", "municipal", "internal")
DEFAULT_STATION_SHARING = "internal"


class SensorKind(StrEnum):
    """What a station measures (the Avro SensorKind symbols, lower-cased in pack files)."""

    RAIN_GAUGE = "rain_gauge"
    RIVER_LEVEL_GAUGE = "river_level_gauge"

    @property
    def avro_symbol(self) -> str:
        return self.name


class ZoneKind(StrEnum):
    """Kinds of hazard zone a pack may carry; packs may add more through region.yaml."""

    FLOOD_INUNDATION = "flood_inundation"  # 洪水浸水想定区域
    LANDSLIDE_WARNING = "landslide_warning"  # 土砂災害警戒区域
    TSUNAMI_INUNDATION = "tsunami_inundation"  # 津波浸水想定区域
    STORM_SURGE = "storm_surge"  # 高潮浸水想定区域


@dataclass(frozen=True)
class Municipality:
    """A municipality or designated-city ward (区) by its 5-digit JIS X 0402 code (N03_007)."""

    code: str
    name: str
    city_code: str | None = None  # the designated city (政令指定都市) a ward belongs to
    city_name: str | None = None


@dataclass(frozen=True)
class RiverStages:
    """A river gauge's published stages in metres (水位周知河川 thresholds).

    standby 水防団待機水位 < caution 氾濫注意水位 (警戒レベル2相当) < evacuation 避難判断水位 (レベル3相当)
    < danger 氾濫危険水位 (レベル4相当); overflow 氾濫発生 (レベル5相当) when the gauge defines it.
    """

    standby_m: float
    caution_m: float
    evacuation_m: float
    danger_m: float
    overflow_m: float | None = None


@dataclass(frozen=True)
class Station:
    """A sensor of the region pack."""

    station_id: str
    kind: SensorKind
    name: str
    name_en: str
    lat: float
    lon: float
    alt_m: float | None = None
    municipality_code: str | None = None  # filled by the pack loader from the geofence
    river_stages: RiverStages | None = None
    downstream_municipalities: tuple[str, ...] = ()
    hazard_zone_ids: tuple[str, ...] = ()
    rule_overrides: dict[str, RuleOverride] = field(default_factory=dict, hash=False, compare=False)
    sharing: str = DEFAULT_STATION_SHARING  # STATION_SHARING: who may see its readings

    @property
    def is_public(self) -> bool:
        return self.sharing == "public"

    @property
    def home_code(self) -> str:
        """The municipality the station stands in (every station of a loaded pack has one)."""
        if self.municipality_code is None:
            raise ValueError(f"station {self.station_id} has no municipality: it was not located by its pack")
        return self.municipality_code

    jma_station_code: str | None = None  # 17-digit 水位観測所 code of JMA's flood forecasts (river gauges)


@dataclass(frozen=True)
class ZoneRef:
    """A hazard zone a point falls in."""

    zone_id: str
    kind: str
    rank: int | None = None


@dataclass(frozen=True)
class Location:
    """Answer of a point look-up."""

    municipality_code: str | None
    municipality_name: str | None
    city_code: str | None
    method: str | None  # "contains", "nearest", or None when nothing within reach
    distance_m: float
    hazard_zones: tuple[ZoneRef, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "municipality_code": self.municipality_code,
            "municipality_name": self.municipality_name,
            "city_code": self.city_code,
            "method": self.method,
            "distance_m": round(self.distance_m, 1),
            "hazard_zones": [{"zone_id": z.zone_id, "kind": z.kind, "rank": z.rank} for z in self.hazard_zones],
        }
