"""One batch through the hub: decode, validate, geofence, rules, lifecycle, fan-out, encode.

No Kafka here: ``Pipeline.process`` takes a batch of raw messages and the station states, and
returns the records to write (enriched readings, alert events on every topic they go to, dead
letters) and the new station states. The Faust agent (``streams.hub.worker``) only moves bytes between
Kafka and this function, so everything it decides is unit-tested without a broker.

The hot path is batch-shaped: one decode loop, one vectorised geofence call for the positions not
seen before (every station's own position is geofenced once, on start), one encode call per schema.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence

from streams.kernel.alerts import SHARING, Alert, SourceReading, Transition, topics_for_alert
from streams.kernel.batch import AlertOut, BatchResult
from streams.kernel.messages import AvroRecord, Message, OutRecord
from streams.kernel.region import Placement, RegionPack
from streams.kernel.topics import HubTopics
from streams.observed.lifecycle import StationChange, StationState, evaluate_reading, station_rules
from streams.observed.readings import MISSING_FIELD, UNDECODABLE, UNKNOWN_SCHEMA, InvalidReading, Reading, validate
from streams.platform.avro import (
    ALERT,
    DEAD_LETTER,
    ENRICHED,
    READING,
    AvroCodec,
    CodecError,
    PrefixedRecordEncoder,
    SchemaStore,
)
from streams.platform.wire import TopicFraming

# What one batch of readings gives: the stations' new states, and the changes behind its alert events.
ObservedResult = BatchResult[StationState, StationChange]

_CODEC_REASON = {
    "truncated": UNDECODABLE,
    "bad_magic": UNDECODABLE,
    "undecodable": UNDECODABLE,
    "unknown_schema": UNKNOWN_SCHEMA,
    "registry": UNKNOWN_SCHEMA,
    "not_encodable": UNDECODABLE,
}


def _worker_name() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


class Pipeline:
    """The hub's processing of one region, batch by batch."""

    def __init__(
        self, pack: RegionPack, topics: HubTopics, store: SchemaStore, *, clock: Callable[[], float] = time.time
    ):
        self.pack = pack
        self.topics = topics
        self.readings = AvroCodec(store, READING)
        self.enriched = PrefixedRecordEncoder(store, ENRICHED)
        self.alerts = AvroCodec(store, ALERT)
        self.framing = TopicFraming(store, topics.confluent)  # the alert topics clients read: Confluent framing
        self.framing.prepare(topics.alert_topics(), self.alerts.schema)
        self.dead = AvroCodec(store, DEAD_LETTER)
        self.clock = clock  # only for dead letters' failed_at; rules never see it
        self.worker = _worker_name()
        # position -> (where it is, the encoded "where" part of its enriched readings)
        self._location_cache: dict[tuple[float, float], tuple[Placement, bytes]] = {}
        self._fanout: dict[str, tuple[str, ...]] = {
            s.station_id: pack.concerned_codes(s) for s in pack.stations.values()
        }
        self._compiled = {s.station_id: station_rules(s, pack.rules) for s in pack.stations.values()}
        # every station's own position, geofenced once on start (one vectorised call): a reading that
        # carries no position of its own is then never a first sighting, however many stations there are
        self._locate_positions([(s.lat, s.lon) for s in pack.stations.values()])

    # -- fan-out -----------------------------------------------------------------------------------
    def topics_for(self, codes: Sequence[str], sharing_level: str) -> tuple[str, ...]:
        topics = self.topics
        return topics_for_alert(topics.alerts, topics.municipal, topics.public, codes, sharing_level=sharing_level)

    # -- stages ----------------------------------------------------------------------------------
    def _dead_letter(self, result: ObservedResult, message: Message, reason: str, detail: str) -> AvroRecord:
        return result.dead_letter(
            message, reason, detail, stage="ingest", failed_at=int(self.clock() * 1000), worker=self.worker
        )

    def _locate(self, readings: Sequence[Reading]) -> list[tuple[Placement, bytes]]:
        """Where each reading is — (municipality code, city code, method, distance, zones) — and the
        encoded rest of its enriched record; geofenced in one call for the positions not seen before."""
        cache = self._location_cache
        self._locate_positions((r.lat, r.lon) for r in readings)
        return [cache[(r.lat, r.lon)] for r in readings]

    def _locate_positions(self, positions: Iterable[tuple[float, float]]) -> None:
        """Geofence the positions not in the cache, in one call, and cache them with their encoded part."""
        cache = self._location_cache
        # (not `set - cache.keys()`: that copies every cached key into a set, batch after batch)
        unseen = list({position for position in positions if position not in cache})
        if unseen:
            if len(cache) + len(unseen) > 200_000 + len(self.pack.stations):  # moving sensors: bounded memory
                cache.clear()
            region = self.pack.name
            for position, (code, city, method, distance, zones) in zip(
                unseen, self.pack.place_many(unseen), strict=True
            ):
                rest = self.enriched.rest_bytes(
                    {
                        "region": region,
                        "municipality_code": code,
                        "city_code": city,
                        "geofence_method": method,
                        "distance_m": distance,
                        "hazard_zones": [{"zone_id": z.zone_id, "kind": z.kind, "rank": z.rank} for z in zones],
                    }
                )
                cache[position] = ((code, city, method, distance, zones), rest)

    def _alert(self, t: StationChange, codes: Sequence[str]) -> Alert:
        pack, station = self.pack, self.pack.stations[t.station_id]
        what = f"{t.level.event}" + (" 解除" if t.transition == Transition.CLEARED else "")
        return Alert.of_change(
            t,
            region=pack.name,
            prefecture_code=pack.prefecture_code,
            rule=t.rule.id,
            event=t.level.event,
            headline=f"{station.name}（{pack.name_of(station.home_code)}）{what}: {t.value:g} {t.rule.unit}",
            sharing_level=SHARING[t.rule.sharing_level],
            subject_id=t.station_id,
            municipality_codes=tuple(codes),
            area_description="、".join(pack.name_of(c) for c in codes),
            point=(station.lat, station.lon, station.alt_m),
            hazard_zone_ids=tuple(station.hazard_zone_ids),
            value=t.value,
            unit=t.rule.unit,
            threshold=t.threshold,
            source_readings=(SourceReading(t.station_id, t.observed_at, t.rule.quantity, t.value, t.rule.unit),),
        )

    # -- the batch -------------------------------------------------------------------------------
    def _decode(
        self, messages: Sequence[Message], result: ObservedResult
    ) -> tuple[list[tuple[Message, Reading]], list[tuple[Message, AvroRecord]]]:
        """The valid readings, and a dead letter for every message that is not one."""
        dead_records: list[tuple[Message, AvroRecord]] = []
        valid: list[tuple[Message, Reading]] = []
        stations = self.pack.stations
        for message, decoded in zip(messages, self.readings.decode_many([m.value for m in messages]), strict=True):
            if isinstance(decoded, CodecError):
                reason = _CODEC_REASON.get(decoded.reason, UNDECODABLE)
                if "missing" in decoded.detail.lower() or "no default" in decoded.detail.lower():
                    reason = MISSING_FIELD
                dead_records.append((message, self._dead_letter(result, message, reason, str(decoded))))
                continue
            try:
                valid.append((message, validate(decoded, stations)))
            except InvalidReading as exc:
                dead_records.append((message, self._dead_letter(result, message, exc.reason, exc.detail)))
        return valid, dead_records

    @staticmethod
    def _count(result: ObservedResult, valid: Sequence[tuple[Message, Reading]], methods: Sequence[str]) -> None:
        """The batch's figures for the metrics, in one pass each (not per reading)."""
        readings = [reading for _, reading in valid]
        result.readings_valid += len(readings)
        result.readings_missing += sum(1 for r in readings if r.is_missing)
        result.geofence_nearest += methods.count("nearest")
        result.geofence_none += methods.count("none")
        if readings:
            latest = max(r.observed_at for r in readings)
            if result.event_time_max is None or latest > result.event_time_max:
                result.event_time_max = latest
        result.produced_at.extend(r.produced_at for r in readings if r.produced_at)
        times = result.station_times
        for r in readings:
            if r.observed_at > times.get(r.station_id, 0):
                times[r.station_id] = r.observed_at

    def _apply_rules(
        self,
        reading: Reading,
        result: ObservedResult,
        state_of: Callable[[str], StationState],
        alert_outs: list[AlertOut[StationChange]],
    ) -> None:
        """The station's rules on one reading, in event time; a reading not newer than the last changes nothing."""
        sid = reading.station_id
        states = result.states
        state = states[sid] if sid in states else state_of(sid)
        if state.last_observed_at is not None and reading.observed_at <= state.last_observed_at:
            result.readings_stale += 1
            return
        new_state, transitions = evaluate_reading(
            state,
            region=self.pack.name,
            station=self.pack.stations[sid],
            rules=self.pack.rules,
            observed_at=reading.observed_at,
            values=reading.values,
            compiled=self._compiled[sid],
        )
        states[sid] = new_state
        codes = self._fanout[sid]
        for t in transitions:
            alert = self._alert(t, codes)
            alert_outs.append(AlertOut(t, alert, alert.record(), self.topics_for(codes, alert.sharing_level)))

    def process(self, messages: Sequence[Message], state_of: Callable[[str], StationState]) -> ObservedResult:
        """One batch: the records to write (enriched readings, alert events, dead letters) and new states."""
        result = ObservedResult()
        valid, dead_records = self._decode(messages, result)
        alert_outs: list[AlertOut[StationChange]] = []
        records = result.records
        enriched, join, body = self.topics.enriched, self.enriched.join, self.enriched.inner_body
        located = self._locate([r for _, r in valid])
        self._count(result, valid, [placement[2] for placement, _ in located])
        for (message, reading), (_, rest) in zip(valid, located, strict=True):
            records.append(
                OutRecord(enriched, reading.station_id.encode(), join(body(message.value, reading.record), rest))
            )
            self._apply_rules(reading, result, state_of, alert_outs)
        frame, schema = self.framing.frame, self.alerts.schema
        for out, payload in zip(alert_outs, self.alerts.encode_many([a.record for a in alert_outs]), strict=True):
            key = out.alert.alert_id.encode()
            records.extend(OutRecord(topic, key, frame(payload, topic, schema)) for topic in out.topics)
        for (message, _), payload in zip(
            dead_records, self.dead.encode_many([d for _, d in dead_records]), strict=True
        ):
            records.append(OutRecord(self.topics.deadletter, message.key or b"", payload))
        result.alerts = alert_outs
        return result
