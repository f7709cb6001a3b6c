"""One batch of official reports through the hub: decode, parse safely, validate, lifecycle, fan-out, encode.

The same contract as :class:`streams.observed.pipeline.Pipeline`: ``process`` takes a batch of consumed
messages (each an ``OfficialReport`` with JMA's XML) and a function giving the state of a key (one
event's :class:`~streams.official.lifecycle.OfficialState`), and returns a ``BatchResult`` — the records to
write (alert events on every topic they go to, the observed river levels as readings on the region's
raw readings topic, dead letters), the new states by key, and the figures the metrics need. No Kafka.

A report that is not XML, not valid against JMA's schema, of a kind, status or code the hub does not
handle, whose key is not its event's, or that names an area of the pack's own prefecture mapping to
no municipality, is dead-lettered whole with the reason; areas of other prefectures are skipped and
counted (cross-border reports are normal).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from streams.kernel.alerts import Alert, Source, SourceReading, Status, topics_for_alert
from streams.kernel.batch import AlertOut, BatchResult
from streams.kernel.messages import AvroRecord, Message, OutRecord
from streams.kernel.region import RegionPack
from streams.kernel.topics import HubTopics
from streams.observed.pipeline import _worker_name
from streams.observed.readings import UNDECODABLE, UNKNOWN_SCHEMA
from streams.official.jma_xml import JmaXmlError, parse_report
from streams.official.lifecycle import (
    APPLIED,
    OTHER_PREFECTURE,
    RULES,
    AreaChange,
    OfficialState,
    apply_report,
    targets_of,
)
from streams.official.report import FLOOD, LANDSLIDE, JmaReport, ReportError, read_report
from streams.packs.jma_areas import areas_of
from streams.platform.avro import ALERT, DEAD_LETTER, OFFICIAL_REPORT, READING, AvroCodec, CodecError, SchemaStore
from streams.platform.wire import TopicFraming

# What one batch of official reports gives: each event's new state, and the areas' changes behind its alerts.
OfficialResult = BatchResult[OfficialState, AreaChange]

CREDIT = "出典：気象庁"
WRONG_KEY = "wrong_key"
READING_SOURCE = "jma-flood-forecast"  # SensorReading.source of the observed levels relayed from flood forecasts


class OfficialPipeline:
    """The hub's processing of one region's official reports, batch by batch."""

    def __init__(
        self, pack: RegionPack, topics: HubTopics, store: SchemaStore, *, clock: Callable[[], float] = time.time
    ):
        self.pack = pack
        self.areas = areas_of(pack)  # JMA's area codes as this pack's municipalities
        self.topics = topics
        self.reports = AvroCodec(store, OFFICIAL_REPORT)
        self.alerts = AvroCodec(store, ALERT)
        self.framing = TopicFraming(store, topics.confluent)  # the alert topics clients read: Confluent framing
        self.framing.prepare(topics.alert_topics(), self.alerts.schema)
        self.readings = AvroCodec(store, READING)
        self.dead = AvroCodec(store, DEAD_LETTER)
        self.clock = clock  # only for dead letters' failed_at; the lifecycle never sees it
        self.worker = _worker_name()

    # -- fan-out -----------------------------------------------------------------------------------
    def topics_for(self, codes: Sequence[str], status: str) -> tuple[str, ...]:
        """Every alert to the prefecture's topic; an Actual one also to its municipalities' and the public
        topic. Exercises and tests stay on the prefecture's topic (never published as Actual)."""
        topics = self.topics
        return topics_for_alert(
            topics.alerts, topics.municipal, topics.public, codes, sharing_level="PUBLIC", status=status
        )

    # -- records -----------------------------------------------------------------------------------
    def _description(self, t: AreaChange) -> str:
        """JMA's area name, with the pack's municipalities when they are not just that one."""
        names = []
        for code in t.target.municipality_codes:
            if code in self.pack.designated_cities:
                continue
            m = self.pack.municipality(code)
            names.append(f"{m.city_name or ''}{m.name}")
        if not names or names == [t.target.name]:
            return t.target.name
        return f"{t.target.name}（{'、'.join(names)}）"

    def _alert(self, t: AreaChange) -> Alert:
        report, target = t.report, t.target
        flood = report.flood
        condition = "取消" if report.info_type == "取消" else target.condition
        said = f" {condition}" if report.info_kind == LANDSLIDE or report.info_type == "取消" else ""
        levels = flood.levels if flood is not None else ()
        return Alert.of_change(
            t,
            region=self.pack.name,
            prefecture_code=self.pack.prefecture_code,
            rule=t.rule,
            event=flood.kind_name if flood is not None and flood.kind_name else report.info_kind,
            headline=f"{report.head_title}: {target.name}{said}（{CREDIT}）",
            sharing_level="PUBLIC",
            subject_id=target.code,
            municipality_codes=tuple(target.municipality_codes),
            area_description=self._description(t),
            source_readings=tuple(
                SourceReading(self._station_id(w.station_code), w.observed_at, "water_level", w.value_m, "m")
                for w in levels
            ),
            source=Source.JMA,
            status=Status(report.status),
            expires=t.expires,
            official=self._official(t, condition),
        )

    def _official(self, t: AreaChange, condition: str) -> AvroRecord:
        report, flood = t.report, t.report.flood
        area = next((a for a in report.areas if a.code == t.target.code), None)
        return {
            "info_kind": report.info_kind,
            "control_title": report.control_title,
            "head_title": report.head_title,
            "publishing_office": report.publishing_office,
            "report_datetime": report.report_datetime,
            "event_id": report.event_id,
            "serial": report.serial,
            "info_type": report.info_type,
            "headline": report.headline_text,
            "area_codes": [t.target.code],
            "credit": CREDIT,
            "kind_name": flood.kind_name if flood is not None else (area.kind_name if area else ""),
            "kind_code": flood.kind_code if flood is not None else (area.kind_code if area else ""),
            "condition": condition,
            "area_name": t.target.name,
            "text": flood.main_text if flood is not None else "",
        }

    def _station_id(self, jma_code: str) -> str:
        station = self.pack.stations_by_jma_code.get(jma_code)
        return station.station_id if station is not None else jma_code

    def _readings(self, report: JmaReport) -> list[AvroRecord]:
        """The observed (現況) water levels at the gauges this pack knows, as SensorReading records."""
        out: list[AvroRecord] = []
        for level in report.flood.levels if report.flood is not None else ():
            station = self.pack.stations_by_jma_code.get(level.station_code)
            if station is None:
                continue
            out.append(
                {
                    "station_id": station.station_id,
                    "sensor_kind": "RIVER_LEVEL_GAUGE",
                    "observed_at": level.observed_at,
                    "location": None,
                    "measurements": [{"quantity": "water_level", "value": level.value_m, "unit": "m"}],
                    "quality": "OK",
                    "source": READING_SOURCE,
                    "produced_at": None,
                }
            )
        return out

    def _dead_letter(self, result: OfficialResult, message: Message, reason: str, detail: str) -> AvroRecord:
        return result.dead_letter(
            message, reason, detail, stage="official", failed_at=int(self.clock() * 1000), worker=self.worker
        )

    # -- the batch -------------------------------------------------------------------------------
    def _report_of(self, message: Message, decoded: AvroRecord | CodecError) -> JmaReport:
        """The report a message carries; CodecError, JmaXmlError or ReportError when it is not a usable one."""
        if isinstance(decoded, CodecError):
            raise decoded
        report = read_report(parse_report(decoded["xml"]))
        key = (message.key or b"").decode("utf-8", "replace")
        if key != report.key:
            raise ReportError(WRONG_KEY, f"message key {key!r}; the report's key is {report.key!r}")
        return report

    def _one(
        self,
        message: Message,
        decoded: AvroRecord | CodecError,
        result: OfficialResult,
        state_of: Callable[[str], OfficialState],
    ) -> tuple[list[AreaChange], list[AvroRecord]]:
        """One report's transitions and readings; raises what makes it a dead letter."""
        report = self._report_of(message, decoded)
        rule = RULES[report.info_kind]
        targets, skipped = targets_of(report, self.areas)
        result.areas_skipped += skipped
        if not targets:
            _count(result, rule, OTHER_PREFECTURE)
            return [], []
        states = result.states
        state = states[report.key] if report.key in states else state_of(report.key)
        outcome = apply_report(state, report, targets, region=self.pack.name)
        _count(result, rule, outcome.outcome)
        if outcome.state is not state:
            states[report.key] = outcome.state
        if result.event_time_max is None or report.report_datetime > result.event_time_max:
            result.event_time_max = report.report_datetime
        readings = self._readings(report) if outcome.outcome == APPLIED and report.info_kind == FLOOD else []
        return outcome.transitions, readings

    def process(self, messages: Sequence[Message], state_of: Callable[[str], OfficialState]) -> OfficialResult:
        """One batch: the records to write (alert events, readings, dead letters) and the new states by key."""
        result = OfficialResult()
        transitions: list[AreaChange] = []
        readings: list[AvroRecord] = []
        dead: list[tuple[Message, AvroRecord]] = []
        for message, decoded in zip(messages, self.reports.decode_many([m.value for m in messages]), strict=True):
            try:
                more, levels = self._one(message, decoded, result, state_of)
            except CodecError as exc:
                reason = UNKNOWN_SCHEMA if exc.reason in ("unknown_schema", "registry") else UNDECODABLE
                dead.append((message, self._dead_letter(result, message, reason, str(exc))))
                continue
            except (JmaXmlError, ReportError) as exc:
                dead.append((message, self._dead_letter(result, message, exc.reason, exc.detail)))
                continue
            transitions += more
            readings += levels
        alert_outs: list[AlertOut[AreaChange]] = []
        for t in transitions:
            alert = self._alert(t)
            topics = self.topics_for(alert.municipality_codes, alert.status)
            alert_outs.append(AlertOut(t, alert, alert.record(), topics))
        records = result.records
        frame, schema = self.framing.frame, self.alerts.schema
        for out, payload in zip(alert_outs, self.alerts.encode_many([a.record for a in alert_outs]), strict=True):
            key = out.alert.alert_id.encode()
            records.extend(OutRecord(topic, key, frame(payload, topic, schema)) for topic in out.topics)
        for reading, payload in zip(readings, self.readings.encode_many(readings), strict=True):
            records.append(OutRecord(self.topics.raw, reading["station_id"].encode(), payload))
        for (message, _), payload in zip(dead, self.dead.encode_many([d for _, d in dead]), strict=True):
            records.append(OutRecord(self.topics.deadletter, message.key or b"", payload))
        result.alerts = alert_outs
        return result


def _count(result: OfficialResult, rule: str, outcome: str) -> None:
    key = f"{rule}/{outcome}"
    result.reports[key] = result.reports.get(key, 0) + 1
