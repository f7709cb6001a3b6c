"""Avro codec: both framings, schema evolution, and one clear error for every kind of bad bytes."""

from __future__ import annotations

import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from streams.platform.avro import (
    ALERT,
    DEAD_LETTER,
    READING,
    SINGLE_OBJECT_MAGIC,
    AvroCodec,
    CodecError,
    SchemaStore,
    default_store,
)
from streams.platform.registry_client import SchemaRegistryClient

UTSUNOMIYA_READING = {
    "station_id": "41277",
    "sensor_kind": "RAIN_GAUGE",
    "observed_at": 1693807200000,  # 2023-09-04T15:00+09:00
    "location": {"lat": 36.54833, "lon": 139.86833, "alt_m": 119.0},
    "measurements": [
        {"quantity": "precipitation_1h", "value": 71.0, "unit": "mm"},
        {"quantity": "precipitation_24h", "value": None, "unit": "mm"},
    ],
    "quality": "OK",
    "source": "jma-amedas",
    "produced_at": None,
}


@pytest.fixture(scope="module")
def store() -> SchemaStore:
    return default_store()


def test_reading_round_trips_through_single_object_encoding(store):
    codec = AvroCodec(store, READING)

    payload = codec.encode(UTSUNOMIYA_READING)

    assert payload[:2] == SINGLE_OBJECT_MAGIC
    assert payload[2:10] == store.by_name(READING).fingerprint
    assert codec.decode(payload) == UTSUNOMIYA_READING


def test_fingerprint_is_crc64_avro_of_the_canonical_form(store):
    # The Avro spec's reference: fingerprint64 over the UTF-8 canonical form, little-endian.
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in store.by_name(READING).canonical.encode():
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]

    assert store.by_name(READING).fingerprint == struct.pack("<Q", fp)


def test_batch_encode_and_decode_keep_order_and_report_bad_items_in_place(store):
    codec = AvroCodec(store, READING)
    readings = [dict(UTSUNOMIYA_READING, station_id=str(41000 + i)) for i in range(50)]
    payloads = codec.encode_many(readings)
    payloads.insert(10, b"garbage")

    decoded = codec.decode_many(payloads)

    assert isinstance(decoded[10], CodecError) and decoded[10].reason == "bad_magic"
    assert [d["station_id"] for d in decoded if not isinstance(d, CodecError)] == [r["station_id"] for r in readings]


def test_alert_and_dead_letter_schemas_round_trip(store):
    alert = {
        "alert_id": "tochigi-rain_1h-41277-1693807200000",
        "sequence": 0,
        "msg_type": "ALERT",
        "transition": "RAISED",
        "references": None,
        "references_observed_at": None,
        "region": "tochigi",
        "prefecture_code": "09",
        "rule": "rain_1h",
        "level": "very_heavy",
        "level_rank": 3,
        "warning_level": None,
        "event": "非常に激しい雨",
        "headline": "宇都宮 71.0 mm/h",
        "severity": "Severe",
        "urgency": "Immediate",
        "certainty": "Observed",
        "sharing_level": "PUBLIC",
        "station_id": "41277",
        "observed_at": 1693807200000,
        "value": 71.0,
        "unit": "mm",
        "threshold": 50.0,
        "area": {"description": "宇都宮市", "point": {"lat": 36.5, "lon": 139.8, "alt_m": None}, "hazard_zone_ids": []},
        "municipality_codes": ["09201"],
        "source_readings": [
            {
                "station_id": "41277",
                "observed_at": 1693807200000,
                "quantity": "precipitation_1h",
                "value": 71.0,
                "unit": "mm",
            }
        ],
        "source": "hub",
        "status": "Actual",
        "expires": None,
        "official": None,
    }
    dead = {
        "reason": "undecodable",
        "error_detail": "x",
        "stage": "ingest",
        "source_topic": "t",
        "source_partition": 0,
        "source_offset": 5,
        "source_timestamp": None,
        "original_key": b"k",
        "original_value": b"\x00\xff",
        "failed_at": 1,
        "worker": "w",
    }

    assert AvroCodec(store, ALERT).decode(AvroCodec(store, ALERT).encode(alert)) == alert
    assert AvroCodec(store, DEAD_LETTER).decode(AvroCodec(store, DEAD_LETTER).encode(dead)) == dead


def test_alerts_written_with_the_first_alert_schema_still_decode_with_the_new_fields_defaulted(store, project_root):
    import io

    import fastavro

    first = json.loads((project_root / "avro" / "history" / "Alert.v1.avsc").read_text())
    first_parsed = fastavro.parse_schema(
        first, named_schemas={"jp.bosai.hub.GeoPoint": store.by_name("jp.bosai.hub.GeoPoint").parsed}
    )
    known = [s for s in store.versions(ALERT) if s.source.endswith("Alert.v1.avsc")]
    assert len(known) == 1
    record = {
        "alert_id": "a",
        "sequence": 0,
        "msg_type": "ALERT",
        "transition": "RAISED",
        "region": "tochigi",
        "prefecture_code": "09",
        "rule": "rain_1h",
        "level": "heavy",
        "level_rank": 1,
        "event": "強い雨",
        "headline": "h",
        "severity": "Moderate",
        "urgency": "Immediate",
        "certainty": "Observed",
        "sharing_level": "PUBLIC",
        "station_id": "41277",
        "observed_at": 1693807200000,
        "unit": "mm",
        "area": {"description": "宇都宮市"},
        "municipality_codes": ["09201"],
    }
    body = io.BytesIO()
    fastavro.schemaless_writer(body, first_parsed, record)

    decoded = AvroCodec(store, ALERT).decode(SINGLE_OBJECT_MAGIC + known[0].fingerprint + body.getvalue())

    assert (decoded["alert_id"], decoded["source"], decoded["status"], decoded["official"]) == (
        "a",
        "hub",
        "Actual",
        None,
    )


def test_alerts_written_with_the_second_alert_schema_still_decode_with_the_official_fields_defaulted(
    store, project_root
):
    import io

    import fastavro

    second = json.loads((project_root / "avro" / "history" / "Alert.v2.avsc").read_text())
    named = {"jp.bosai.hub.GeoPoint": store.by_name("jp.bosai.hub.GeoPoint").parsed}
    parsed = fastavro.parse_schema(second, named_schemas=named)
    (version,) = [s for s in store.versions(ALERT) if s.source.endswith("Alert.v2.avsc")]
    official = {
        "info_kind": "土砂災害警戒情報",
        "control_title": "土砂災害警戒情報",
        "head_title": "神奈川県土砂災害警戒情報",
        "publishing_office": "横浜地方気象台",
        "report_datetime": 1730541000000,
        "event_id": "神奈川県土砂災害警戒情報",
        "serial": "1",
        "info_type": "発表",
    }
    record = {
        "alert_id": "a",
        "sequence": 0,
        "msg_type": "ALERT",
        "transition": "RAISED",
        "region": "kanagawa",
        "prefecture_code": "14",
        "rule": "jma_landslide",
        "level": "警戒レベル4相当",
        "level_rank": 1,
        "event": "土砂災害警戒情報",
        "headline": "h",
        "severity": "Severe",
        "urgency": "Immediate",
        "certainty": "Likely",
        "sharing_level": "PUBLIC",
        "station_id": "1420600",
        "observed_at": 1730541000000,
        "area": {"description": "小田原市"},
        "municipality_codes": ["14206"],
        "source": "jma",
        "official": official,
    }
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed, record)

    decoded = AvroCodec(store, ALERT).decode(SINGLE_OBJECT_MAGIC + version.fingerprint + body.getvalue())

    assert decoded["official"]["event_id"] == "神奈川県土砂災害警戒情報"
    assert (decoded["official"]["kind_name"], decoded["official"]["condition"], decoded["official"]["text"]) == (
        "",
        "",
        "",
    )


def _older_reading_schema(store) -> dict:
    """The current SensorReading without its last field: what an older producer writes."""
    schema = json.loads(store.by_name(READING).canonical)
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "produced_at"]
    return schema


def test_reader_with_a_new_optional_field_reads_records_of_the_older_schema(store):
    old = store.add(_older_reading_schema(store), source="v0")
    old_codec = AvroCodec(store, READING)
    old_record = {k: v for k, v in UTSUNOMIYA_READING.items() if k != "produced_at"}
    # Encode with the old writer schema, framed with the old fingerprint.
    import io

    import fastavro

    body = io.BytesIO()
    fastavro.schemaless_writer(body, old.parsed, old_record)
    payload = SINGLE_OBJECT_MAGIC + old.fingerprint + body.getvalue()

    decoded = old_codec.decode(payload)

    assert old.fingerprint != store.by_name(READING).fingerprint
    assert decoded["produced_at"] is None  # the new field's default
    assert decoded["station_id"] == "41277"


def test_unknown_enum_symbol_of_a_newer_writer_reads_as_the_enum_default(store):
    newer = json.loads(store.by_name(READING).canonical)
    for field in newer["fields"]:
        if field["name"] == "sensor_kind":
            field["type"]["symbols"] = field["type"]["symbols"] + ["SOIL_MOISTURE"]
    writer = SchemaStore()
    writer_schema = writer.add(newer)
    store.add(newer)
    writer_codec = AvroCodec(writer, READING)

    payload = writer_codec.encode(dict(UTSUNOMIYA_READING, sensor_kind="SOIL_MOISTURE"))

    assert payload[2:10] == writer_schema.fingerprint
    assert AvroCodec(store, READING).decode(payload)["sensor_kind"] == "UNKNOWN"


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "truncated"),
        (b"\xc3", "bad_magic"),
        (b"\xc3\x01\x01\x02", "truncated"),
        (b"hello world, not avro", "bad_magic"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown_schema"),
    ],
)
def test_bad_bytes_raise_codec_error_with_a_reason(store, payload, reason):
    with pytest.raises(CodecError) as caught:
        AvroCodec(store, READING).decode(payload)
    assert caught.value.reason == reason


def test_truncated_body_and_trailing_garbage_raise_codec_error(store):
    codec = AvroCodec(store, READING)
    good = codec.encode(UTSUNOMIYA_READING)

    with pytest.raises(CodecError) as truncated:
        codec.decode(good[:-7])
    with pytest.raises(CodecError) as trailing:
        codec.decode(good + b"\x00\x01")

    assert truncated.value.reason in ("truncated", "undecodable")
    assert trailing.value.reason == "undecodable"


def test_a_message_of_another_schema_is_refused(store):
    dead = AvroCodec(store, DEAD_LETTER).encode(
        {
            "reason": "r",
            "error_detail": "d",
            "stage": "s",
            "source_topic": "t",
            "source_partition": 0,
            "source_offset": 0,
            "failed_at": 0,
        }
    )

    with pytest.raises(CodecError) as caught:
        AvroCodec(store, READING).decode(dead)

    assert caught.value.reason == "unknown_schema"
    assert "DeadLetter" in caught.value.detail


def test_a_record_missing_a_required_field_cannot_be_encoded(store):
    broken = {k: v for k, v in UTSUNOMIYA_READING.items() if k != "observed_at"}

    with pytest.raises(CodecError) as caught:
        AvroCodec(store, READING).encode(broken)

    assert caught.value.reason == "not_encodable"


# -- Confluent wire format -------------------------------------------------------------------------


class _Registry(BaseHTTPRequestHandler):
    """The two endpoints of the Confluent Schema Registry REST API the codec uses, in memory."""

    schemas: list[str] = []
    subjects: dict[str, list[int]] = {}

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        subject = self.path.split("/")[2]
        schema = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
        if schema not in self.schemas:
            self.schemas.append(schema)
        schema_id = self.schemas.index(schema) + 1
        self.subjects.setdefault(subject, []).append(schema_id)
        self._send(200, {"id": schema_id})

    def do_GET(self):
        schema_id = int(self.path.rsplit("/", 1)[1])
        if 1 <= schema_id <= len(self.schemas):
            self._send(200, {"schema": self.schemas[schema_id - 1]})
        else:
            self._send(404, {"error_code": 40403, "message": "Schema not found"})


@pytest.fixture()
def registry_url():
    _Registry.schemas, _Registry.subjects = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_confluent_wire_format_round_trips_through_a_registry(store, registry_url):
    codec = AvroCodec(
        store, READING, registry=SchemaRegistryClient(registry_url), subject="bosai.tochigi.readings.raw-value"
    )

    payload = codec.encode(UTSUNOMIYA_READING)
    fresh_reader = AvroCodec(
        store, READING, registry=SchemaRegistryClient(registry_url), subject="bosai.tochigi.readings.raw-value"
    )

    assert payload[0] == 0 and struct.unpack(">I", payload[1:5])[0] == 1
    assert _Registry.subjects == {"bosai.tochigi.readings.raw-value": [1]}
    assert fresh_reader.decode(payload) == UTSUNOMIYA_READING
    # the same decoder also reads single-object encoding
    assert fresh_reader.decode(AvroCodec(store, READING).encode(UTSUNOMIYA_READING)) == UTSUNOMIYA_READING


def test_confluent_message_with_an_unknown_schema_id_is_a_codec_error(store, registry_url):
    codec = AvroCodec(store, READING, registry=SchemaRegistryClient(registry_url), subject="s-value")

    with pytest.raises(CodecError) as caught:
        codec.decode(b"\x00\x00\x00\x00\x63" + b"\x02")

    assert caught.value.reason == "registry"


def test_unreachable_registry_is_a_codec_error_naming_the_url(store):
    codec = AvroCodec(
        store, READING, registry=SchemaRegistryClient("http://127.0.0.1:9", timeout_s=1), subject="s-value"
    )

    with pytest.raises(CodecError) as caught:
        codec.encode(UTSUNOMIYA_READING)

    assert caught.value.reason == "registry" and "127.0.0.1:9" in str(caught.value)


def test_a_topic_framed_for_clients_carries_the_confluent_header_and_every_decoder_of_the_hub_reads_it(store):
    from streams.ops.tail import AnyDecoder
    from streams.platform.wire import TopicFraming

    codec = AvroCodec(store, READING)
    framing = TopicFraming(store, {"bosai.tochigi.alerts.09201"})
    single = codec.encode(UTSUNOMIYA_READING)

    framed = framing.frame(single, "bosai.tochigi.alerts.09201", codec.schema)
    internal = framing.frame(single, "bosai.tochigi.readings.raw", codec.schema)

    assert framed[:1] == b"\x00" and struct.unpack(">I", framed[1:5])[0] == codec.schema.registry_id
    assert framed[5:] == single[10:] and internal == single  # the same body; the hub's own topics unchanged
    assert codec.decode(framed) == codec.decode(single) == UTSUNOMIYA_READING
    assert AnyDecoder(store).decode(framed) == ("SensorReading", UTSUNOMIYA_READING)
    assert SchemaStore.from_directory(Path("avro")).by_name(READING).registry_id == codec.schema.registry_id


def test_registry_ids_are_the_fingerprints_and_every_kept_version_has_its_own(store):
    from streams.platform.schema_registry import schema_id

    versions = [s for s in store.all_versions() if s.name == ALERT]

    assert [s.version for s in versions] == [1, 2, 3]
    assert len({s.registry_id for s in versions}) == 3
    assert all(s.registry_id == schema_id(s.fingerprint) > 0 for s in versions)
    assert schema_id(bytes([1, 0, 0, 0, 9, 9, 9, 9])) == 1 and schema_id(bytes(8)) == 1  # never 0
