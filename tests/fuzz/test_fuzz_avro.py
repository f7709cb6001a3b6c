"""Avro bytes from Kafka (both framings) and the pipelines' decode step: any bytes give a record or one CodecError
with a reason, and a batch of anything gives dead letters with a reason — never an exception out of a batch."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.kernel.messages import InMessage
from streams.kernel.topics import HubTopics
from streams.observed.lifecycle import StationState
from streams.observed.pipeline import Pipeline
from streams.observed.readings import REASONS
from streams.packs.region_pack import load_pack
from streams.platform.avro import (
    ALERT,
    DEAD_LETTER,
    ENRICHED,
    OFFICIAL_REPORT,
    READING,
    SINGLE_OBJECT_MAGIC,
    AvroCodec,
    CodecError,
    default_store,
)
from streams.platform.registry_client import SchemaRegistryClient
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from tests.support.fuzz_contract import check
from tests.support.fuzz_profiles import examples
from tests.support.fuzz_strategies import avro_values, mutated, same_value

STORE = default_store()
SCHEMAS = (READING, ALERT, DEAD_LETTER, ENRICHED, OFFICIAL_REPORT)
CODECS = {name: AvroCodec(STORE, name) for name in SCHEMAS}
CODEC_REASONS = {"truncated", "bad_magic", "unknown_schema", "undecodable", "registry"}
FINGERPRINTS = sorted({s.fingerprint for name in SCHEMAS for s in STORE.versions(name)})
T0 = 1_693_807_200_000  # 2023-09-04T15:00+09:00


def _decode(codec: AvroCodec, payload: bytes, parser: str = "avro.decode"):
    return check(parser, lambda: codec.decode(payload), CodecError, reasons=CODEC_REASONS, shown=payload)


# -- any bytes ------------------------------------------------------------------------------------------------
@given(schema=st.sampled_from(SCHEMAS), payload=st.binary(max_size=512))
def test_any_bytes_decode_to_a_record_or_a_codec_error_with_a_reason(schema, payload):
    _decode(CODECS[schema], payload)


@given(schema=st.sampled_from(SCHEMAS), fingerprint=st.sampled_from(FINGERPRINTS), body=st.binary(max_size=512))
def test_a_known_header_with_any_body_decodes_or_is_refused_with_a_reason(schema, fingerprint, body):
    """The header passes, so fastavro reads the body (with schema resolution for the older versions)."""
    _decode(CODECS[schema], SINGLE_OBJECT_MAGIC + fingerprint + body)


@st.composite
def encoded(draw, schema: str):
    codec = CODECS[schema]
    record = draw(avro_values(codec.schema.parsed))
    return record, codec.encode(record)


@given(data=st.data(), schema=st.sampled_from(SCHEMAS))
def test_every_record_of_a_schema_round_trips(data, schema):
    record, payload = data.draw(encoded(schema))

    decoded = _decode(CODECS[schema], payload, "avro.round_trip")

    assert not isinstance(decoded, CodecError), decoded
    assert same_value(decoded, record)


@given(data=st.data(), schema=st.sampled_from(SCHEMAS))
def test_a_valid_message_with_its_bytes_edited_decodes_or_is_refused_with_a_reason(data, schema):
    _record, payload = data.draw(encoded(schema))
    _decode(CODECS[schema], data.draw(mutated(payload)))


def test_a_huge_declared_length_or_count_is_refused_without_allocating_it():
    """A string length or an array count of 2**62 in a few bytes: refused as truncated, in no time."""
    header = SINGLE_OBJECT_MAGIC + CODECS[READING].schema.fingerprint
    huge = bytes([0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])  # zig-zag long 2**62 - 1
    for payload in (header + huge, header + b"\x02A" + b"\x00" * 20 + huge):
        refused = _decode(CODECS[READING], payload, "avro.decode")
        assert isinstance(refused, CodecError) and refused.reason in ("truncated", "undecodable")


# -- the Confluent framing with a registry that answers anything -------------------------------------------------
class _Registry(http.server.BaseHTTPRequestHandler):
    answer: bytes = b"{}"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(type(self).answer)))
        self.end_headers()
        self.wfile.write(type(self).answer)


@pytest.fixture(scope="module")
def registry():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


READING_CANONICAL = STORE.by_name(READING).canonical
registry_answers = st.one_of(
    st.just({"schema": READING_CANONICAL}),
    st.just({"schema": STORE.by_name(ALERT).canonical}),
    st.sampled_from(['"int"', '"string"', "[]", '["null", "int"]', '{"type": "record"}', "not json", "{", "null"]).map(
        lambda text: {"schema": text}
    ),
    st.sampled_from([{}, {"schema": None}, {"schema": 5}, {"id": 1}, [], "text", None]),
)


@settings(max_examples=examples(60))
@given(answer=registry_answers, schema_id=st.integers(0, 2**32 - 1), body=st.binary(max_size=64))
def test_a_confluent_message_decodes_or_is_refused_whatever_the_registry_answers(registry, answer, schema_id, body):
    """The registry is outside the hub too: a schema id it answers with garbage is a CodecError, not a crash."""
    _Registry.answer = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
    codec = AvroCodec(STORE, READING, registry=SchemaRegistryClient(registry, timeout_s=5), subject="s-value")
    _decode(codec, b"\x00" + schema_id.to_bytes(4, "big") + body, "avro.decode_confluent")


# -- the readings pipeline's decode step: a batch of anything becomes dead letters with reasons --------------------
@pytest.fixture(scope="module")
def pipeline(kanagawa_with_river):
    pack = load_pack(kanagawa_with_river)
    return Pipeline(pack, HubTopics.for_region(load_catalog(default_catalog_path()), pack), STORE, clock=lambda: 1.0)


STATIONS = ["46106", "46211", "46161", "R-14-001", "99999", ""]
QUANTITIES = ["precipitation_1h", "precipitation_10min", "precipitation_24h", "water_level", "speed", ""]
measurement = st.fixed_dictionaries(
    {
        "quantity": st.sampled_from(QUANTITIES),
        "value": st.none() | st.floats() | st.sampled_from([0.0, 30.0, 80.0, 2.7, 400.0, -1.0]),
        "unit": st.sampled_from(["mm", "m", "", "cm"]),
    }
)
readings = st.fixed_dictionaries(
    {
        "station_id": st.sampled_from(STATIONS),
        "sensor_kind": st.sampled_from(["RAIN_GAUGE", "RIVER_LEVEL_GAUGE"]),
        "observed_at": st.integers(-(2**63), 2**63 - 1) | st.integers(T0 - 86_400_000, T0 + 86_400_000),
        "location": st.none()
        | st.fixed_dictionaries(
            {"lat": st.floats() | st.floats(35, 36), "lon": st.floats() | st.floats(139, 140), "alt_m": st.none()}
        ),
        "measurements": st.lists(measurement, max_size=4),
        "quality": st.sampled_from(["OK", "MISSING", "SUSPECT"]),
        "source": st.just("fuzz"),
        "produced_at": st.none() | st.integers(0, 2**62),
    }
)


@settings(max_examples=examples(100))
@given(
    batch=st.lists(
        st.one_of(
            readings.map(CODECS[READING].encode),
            readings.map(CODECS[READING].encode).flatmap(lambda p: mutated(p, max_edits=2)),
            st.binary(max_size=64),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_a_batch_of_anything_gives_enriched_readings_and_dead_letters_with_reasons_never_an_exception(pipeline, batch):
    messages = [InMessage("bosai.kanagawa.readings.raw", 0, i, b"k", value, T0) for i, value in enumerate(batch)]

    result = check(
        "pipeline.readings", lambda: pipeline.process(messages, lambda _sid: StationState()), (), shown=batch
    )

    dead = [r for r in result.records if r.topic == "bosai.kanagawa.deadletter"]
    enriched = [r for r in result.records if r.topic == "bosai.kanagawa.readings.enriched"]
    assert len(dead) + len(enriched) == len(batch)  # nothing vanished
    assert sum(result.dead_letters.values()) == len(dead) and set(result.dead_letters) <= set(REASONS)
    for record in dead:
        letter = CODECS[DEAD_LETTER].decode(record.value)
        assert letter["reason"] in REASONS and letter["error_detail"]
