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

from streams.kernel.alerts import Alert, Source, SourceReading, Status, Transition, topics_for_alert
from streams.kernel.batch import AlertOut, BatchResult
from streams.kernel.messages import AvroRecord, Message, OutRecord
from streams.kernel.region import RegionPack
from streams.kernel.topics import HubTopics
from streams.observed.pipeline import _worker_name
from streams.observed.readings import UNDECODABLE, UNKNOWN_SCHEMA
from streams.official.jma_xml import JmaXmlError, parse_report
from streams.official.kinds import AnyReport, read_any
from streams.official.lifecycle import (
    APPLIED,
    OTHER_PREFECTURE,
    RULES,
    AreaChange,
    OfficialState,
    apply_report,
    targets_of,
)
from streams.official.relay import (
    RelayChange,
    RelayReport,
    RelaySettings,
    apply_relay,
    concerns_pack,
    relay_key,
    rule_of,
)
from streams.official.report import FLOOD, LANDSLIDE, JmaReport, ReportError
from streams.packs.jma_areas import areas_of
from streams.platform.avro import ALERT, DEAD_LETTER, OFFICIAL_REPORT, READING, AvroCodec, CodecError, SchemaStore
from streams.platform.wire import TopicFraming

# What one batch of official reports gives: each event's new state, and the areas' changes behind its alerts.
OfficialChange = AreaChange | RelayChange
OfficialResult = BatchResult[OfficialState, OfficialChange]

CREDIT = "出典：気象庁"
WRONG_KEY = "wrong_key"
CLEARED = Transition.CLEARED
READING_SOURCE = "jma-flood-forecast"  # SensorReading.source of the observed levels relayed from flood forecasts


class OfficialPipeline:
    """The hub's processing of one region's official reports, batch by batch."""

    def __init__(
        self,
        pack: RegionPack,
        topics: HubTopics,
        store: SchemaStore,
        *,
        clock: Callable[[], float] = time.time,
        relay: RelaySettings | None = None,
    ):
        self.pack = pack
        self.relay = relay if relay is not None else pack.relay_settings
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
    def topics_for(self, codes: Sequence[str], status: str, sharing_level: str = "PUBLIC") -> tuple[str, ...]:
        """Every alert to the prefecture's topic; an Actual one also to its municipalities' and the public
        topic (unless INTERNAL: a hypocentre alone). Exercises and tests stay on the prefecture's topic (never
        published as Actual)."""
        topics = self.topics
        return topics_for_alert(
            topics.alerts, topics.municipal, topics.public, codes, sharing_level=sharing_level, status=status
        )

    # -- records -----------------------------------------------------------------------------------
    def _description(self, t: AreaChange) -> str:
        return self._named(t.target.name, t.target.municipality_codes)

    def _named(self, name: str, codes: Sequence[str]) -> str:
        """JMA's area name, with the pack's municipalities when they are not just that one."""
        names = []
        for code in codes:
            if code in self.pack.designated_cities:
                continue
            m = self.pack.municipality(code)
            names.append(f"{m.city_name or ''}{m.name}")
        if not names or names == [name]:
            return name
        return f"{name}（{'、'.join(names)}）"

    def _relayed(self, t: RelayChange) -> Alert:
        """The Alert of a warning, earthquake, tsunami or tornado report: JMA's kind and words, credited."""
        head, want = t.head, t.want
        cancelled = "取消" if head.info_type == "取消" else want.condition if t.transition == CLEARED else ""
        said = " ".join(w for w in (want.event, cancelled or want.condition) if w)
        return Alert.of_change(
            t,
            region=self.pack.name,
            prefecture_code=self.pack.prefecture_code,
            rule=t.rule,
            event=want.event,
            headline=f"{head.head_title}: {want.name} {said}（{CREDIT}）",
            sharing_level=want.sharing_level,
            subject_id=want.code,
            municipality_codes=tuple(want.municipality_codes),
            area_description=self._named(want.name, want.municipality_codes),
            source=Source.JMA,
            status=Status(head.status),
            expires=t.expires,
            official={
                "info_kind": head.info_kind,
                "control_title": head.control_title,
                "head_title": head.head_title,
                "publishing_office": head.publishing_office,
                "report_datetime": head.report_datetime,
                "event_id": head.event_id,
                "serial": head.serial,
                "info_type": head.info_type,
                "headline": head.headline_text,
                "area_codes": [want.code] if want.code else [],
                "credit": CREDIT,
                "kind_name": want.event,
                "kind_code": want.kind_code,
                "condition": cancelled or want.condition,
                "area_name": want.name,
                "text": want.text,
            },
        )

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
    def _report_of(self, message: Message, decoded: AvroRecord | CodecError) -> tuple[AnyReport, str]:
        """The report a message carries and its key; CodecError, JmaXmlError or ReportError when it is not a
        usable one."""
        if isinstance(decoded, CodecError):
            raise decoded
        report = read_any(parse_report(decoded["xml"]))
        expected = report.key if isinstance(report, JmaReport) else relay_key(report)
        key = (message.key or b"").decode("utf-8", "replace")
        if key != expected:
            raise ReportError(WRONG_KEY, f"message key {key!r}; the report's key is {expected!r}")
        return report, expected

    def _relay_one(
        self, report: RelayReport, key: str, result: OfficialResult, state_of: Callable[[str], OfficialState]
    ) -> list[OfficialChange]:
        """A warning, earthquake, tsunami or tornado report through its lifecycle (streams.official.relay)."""
        rule = rule_of(report)
        states = result.states
        state = states[key] if key in states else state_of(key)
        if not concerns_pack(report, self.areas, state):
            _count(result, rule, OTHER_PREFECTURE)
            return []
        outcome, skipped = apply_relay(state, report, self.areas, region=self.pack.name, settings=self.relay)
        result.areas_skipped += skipped
        _count(result, rule, outcome.outcome)
        if outcome.state is not state:
            states[key] = outcome.state
        when = report.head.report_datetime
        if result.event_time_max is None or when > result.event_time_max:
            result.event_time_max = when
        return list(outcome.transitions)

    def _one(
        self,
        message: Message,
        decoded: AvroRecord | CodecError,
        result: OfficialResult,
        state_of: Callable[[str], OfficialState],
    ) -> tuple[list[OfficialChange], list[AvroRecord]]:
        """One report's transitions and readings; raises what makes it a dead letter."""
        report, key = self._report_of(message, decoded)
        if not isinstance(report, JmaReport):
            return self._relay_one(report, key, result, state_of), []
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
        return list(outcome.transitions), readings

    def process(self, messages: Sequence[Message], state_of: Callable[[str], OfficialState]) -> OfficialResult:
        """One batch: the records to write (alert events, readings, dead letters) and the new states by key."""
        result = OfficialResult()
        transitions: list[OfficialChange] = []
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
        alert_outs: list[AlertOut[OfficialChange]] = []
        for t in transitions:
            alert = self._relayed(t) if isinstance(t, RelayChange) else self._alert(t)
            topics = self.topics_for(alert.municipality_codes, alert.status, alert.sharing_level)
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
