"""JSON from outside: Orion's NGSI-v2 notifications, the gateway's readings, JMA's AMeDAS 10-minute maps. Any body
gives records or the module's one error (InvalidReading / LayoutError) with a reason; every record given passes
the hub's validation or is refused by it with a reason; nothing deep, huge or odd escapes as another exception."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.fiware.ngsi_in import KEY_VALUES, NORMALIZED, default_mapping, entity_record, parse_notification
from streams.gateway.intake import reading_record, readings_in
from streams.kernel.json_input import MAX_DEPTH, JsonInputError, loads
from streams.kernel.model import SensorKind, Station
from streams.observed.amedas_map import ELEMENTS, LayoutError, map_file, parse_latest_time, parse_map, readings_of
from streams.observed.readings import REASONS, InvalidReading, validate
from tests.support.fuzz_contract import check
from tests.support.fuzz_profiles import examples
from tests.support.fuzz_strategies import awkward_text, dates, json_values, mutated, numbers

T0 = 1_693_807_200_000
STATIONS = {
    "R-1": Station("R-1", SensorKind.RIVER_LEVEL_GAUGE, "川", "river", 36.9, 140.0, municipality_code="09213"),
    "41277": Station("41277", SensorKind.RAIN_GAUGE, "宇都宮", "Utsunomiya", 36.55, 139.87, municipality_code="09201"),
}
MAPPINGS = {
    ("o", "urn:river"): default_mapping("o", "urn:river", STATIONS["R-1"]),
    ("o", "urn:rain"): default_mapping("o", "urn:rain", STATIONS["41277"]),
}
KINDS = {"R-1": "RIVER_LEVEL_GAUGE", "41277": "RAIN_GAUGE"}


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@st.composite
def near_valid(draw, valid: dict, junk=json_values):
    """A valid object with none, one or two of its fields replaced by anything, or dropped."""
    out = dict(valid)
    edits = min(draw(st.sampled_from([0, 0, 1, 1, 1, 2])), len(valid))
    for key in draw(st.lists(st.sampled_from(sorted(valid)), min_size=edits, max_size=edits, unique=True)):
        if draw(st.booleans()):
            out[key] = draw(junk)
        else:
            del out[key]
    return out


GOOD_READING = {
    "station_id": "R-1",
    "observed_at": "2023-09-04T13:00:00+09:00",
    "measurements": [{"quantity": "water_level", "value": 1.5, "unit": "m"}],
    "quality": "OK",
    "location": {"lat": 36.9, "lon": 140.0},
}
GOOD_ENTITY = {
    "id": "urn:river",
    "type": "WaterObserved",
    "dateObserved": {"type": "DateTime", "value": "2023-09-04T13:00:00+09:00"},
    "waterLevel": {"type": "Number", "value": 1.5, "metadata": {"unitCode": {"type": "Text", "value": "MTR"}}},
}
GOOD_ENTITY_KV = {
    "id": "urn:rain",
    "type": "WeatherObserved",
    "dateObserved": "2023-09-04T13:00:00Z",
    "precipitation": 3,
}
field_junk = json_values | numbers | dates


# -- the bounded JSON reader every door uses ----------------------------------------------------------------------
@given(data=st.binary(max_size=256) | json_values.map(lambda v: json.dumps(v).encode()).flatmap(mutated))
@example(data=deep(100_000))  # found: json.loads raised RecursionError (not a ValueError) on a body of '['
@example(data=b"[" + b"1" * 5000 + b"]")
@example(data=b"\xef\xbb\xbf{}")
def test_any_bytes_are_a_json_document_or_a_json_input_error(data):
    result = check("json.loads", lambda: loads(data), JsonInputError, shown=data)
    if not isinstance(result, JsonInputError):
        assert json.loads(json.dumps(result)) == result  # finite, printable, no NaN


def test_a_document_nested_past_the_bound_is_refused_and_one_at_the_bound_is_read():
    assert loads(deep(MAX_DEPTH)) == loads(deep(MAX_DEPTH))
    refused = check("json.loads", lambda: loads(deep(MAX_DEPTH + 1)), JsonInputError)
    assert isinstance(refused, JsonInputError) and "deeper" in str(refused)


# -- Orion's notifications (NGSI-v2), both attribute formats -----------------------------------------------------
def attribute(value):
    return st.one_of(
        st.fixed_dictionaries({"type": st.just("Number"), "value": value}),
        st.fixed_dictionaries(
            {
                "type": st.just("Number"),
                "value": value,
                "metadata": json_values
                | st.fixed_dictionaries(
                    {
                        "unitCode": st.fixed_dictionaries(
                            {"value": st.sampled_from(["MTR", "CMT", "MMT", "X"]) | json_values}
                        )
                    }
                ),
            }
        ),
        json_values,
    )


values = numbers | st.floats(0, 10) | json_values
entities = (
    near_valid(GOOD_ENTITY, field_junk)
    | near_valid(GOOD_ENTITY_KV, field_junk)
    | st.fixed_dictionaries(
        {"id": st.sampled_from(["urn:river", "urn:rain", "other"]) | json_values},
        optional={
            "type": st.sampled_from(["WaterObserved", "WeatherObserved"]) | json_values,
            "waterLevel": attribute(values) | values,
            "precipitation": attribute(values) | values,
            "dateObserved": attribute(dates) | dates | json_values,
            "TimeInstant": attribute(dates) | dates,
        },
    )
)
notifications = st.fixed_dictionaries({"subscriptionId": awkward_text, "data": st.lists(entities | json_values)})


def _records_of_notification(body: bytes, fmt: str | None) -> list:
    """What the Orion door does with a body: entities, then a record or a refusal for each, then validation."""
    out = []
    for entity in parse_notification(body):
        try:
            record = entity_record(
                entity, orion="o", fmt_header=fmt, mappings=MAPPINGS, stations=STATIONS, produced_at=T0
            )
            out.append(validate(record, STATIONS))
        except InvalidReading as exc:
            assert exc.reason in REASONS and exc.detail
            out.append(exc)
    return out


@settings(max_examples=examples(300))
@given(
    body=notifications.map(lambda n: json.dumps(n).encode())
    | notifications.map(lambda n: json.dumps(n).encode()).flatmap(mutated)
    | st.binary(max_size=128),
    fmt=st.sampled_from([None, NORMALIZED, KEY_VALUES, "other"]),
)
@example(
    body=b'{"data": [{"id": "urn:river", "type": "WaterObserved", '
    b'"dateObserved": {"type": "DateTime", "value": "2023-09-04T13:00:00+09:00"}, '
    b'"waterLevel": {"type": "Number", "value": 1, "metadata": {"unitCode": {"value": ["MTR"]}}}}]}',
    fmt=None,
)  # found: TypeError (unhashable list) looking the unitCode up
@example(
    body=b'{"data": [{"id": "urn:rain", "type": "WeatherObserved", "precipitation": 1' + b"0" * 400 + b"}]}", fmt=None
)
def test_any_notification_gives_readings_or_refusals_with_a_reason(body, fmt):
    check("ngsi.notification", lambda: _records_of_notification(body, fmt), InvalidReading, reasons=REASONS, shown=body)


@settings(max_examples=examples(300))
@given(entity=entities, fmt=st.sampled_from([None, NORMALIZED, KEY_VALUES]))
@example(entity={"id": "urn:rain", "type": "WeatherObserved", "precipitation": 10**400}, fmt=KEY_VALUES)
def test_any_entity_value_gives_a_record_or_a_refusal_with_a_reason(entity, fmt):
    """The objects themselves (Python's json reads integers of 4300 digits: the core must cope, whoever parses)."""
    check(
        "ngsi.entity",
        lambda: validate(
            entity_record(entity, orion="o", fmt_header=fmt, mappings=MAPPINGS, stations=STATIONS, produced_at=T0),
            STATIONS,
        ),
        InvalidReading,
        reasons=REASONS,
        shown=entity,
    )


# -- the gateway's JSON readings ---------------------------------------------------------------------------------
measurements = st.fixed_dictionaries(
    {
        "quantity": st.sampled_from(["water_level", "precipitation_1h", "x"]) | json_values,
        "value": numbers | st.floats(0, 5) | json_values,
        "unit": st.sampled_from(["m", "mm"]) | json_values,
    }
)
readings = near_valid(GOOD_READING, field_junk) | st.fixed_dictionaries(
    {"station_id": st.sampled_from(["R-1", "41277", ""]) | json_values},
    optional={
        "observed_at": dates | numbers | json_values,
        "measurements": st.lists(measurements | json_values, max_size=3) | json_values,
        "quality": st.sampled_from(["OK", "MISSING", "BAD"]) | json_values,
        "location": st.fixed_dictionaries({"lat": numbers, "lon": numbers}) | json_values,
    },
)
bodies = st.one_of(
    readings, st.lists(readings | json_values, max_size=5), st.fixed_dictionaries({"readings": st.lists(readings)})
)


def _records_of_body(body: bytes) -> list:
    """What the readings door does: the body's readings, a record or a refusal each, then validation."""
    out = []
    for raw in readings_in(body):
        try:
            out.append(validate(reading_record(raw, sensor_kinds=KINDS, source="g", produced_at=T0), STATIONS))
        except InvalidReading as exc:
            assert exc.reason in REASONS and exc.detail
            out.append(exc)
    return out


@settings(max_examples=examples(300))
@given(
    body=bodies.map(lambda b: json.dumps(b).encode())
    | bodies.map(lambda b: json.dumps(b).encode()).flatmap(mutated)
    | st.binary(max_size=128)
)
@example(body=b'{"station_id": "R-1", "observed_at": 0, "location": {"lat": 1' + b"0" * 400 + b', "lon": 1}}')
@example(body=deep(50_000))
def test_any_readings_body_gives_readings_or_refusals_with_a_reason(body):
    check("gateway.body", lambda: _records_of_body(body), InvalidReading, reasons=REASONS, shown=body)


@settings(max_examples=examples(300))
@given(raw=readings)
@example(
    raw={
        "station_id": "R-1",
        "observed_at": "2023-09-04T13:00:00+09:00",
        "measurements": [{"quantity": "water_level", "value": 1.0, "unit": "m"}],
        "location": {"lat": 10**400, "lon": 139.0},
    }
)  # found: OverflowError converting the latitude to a float
@example(
    raw={
        "station_id": "R-1",
        "observed_at": "2023-09-04T13:00:00+09:00",
        "measurements": [{"quantity": "water_level", "value": 10**400, "unit": "m"}],
    }
)  # found: OverflowError in math.isfinite
def test_any_reading_object_gives_a_record_or_a_refusal_with_a_reason(raw):
    check(
        "gateway.reading",
        lambda: validate(reading_record(raw, sensor_kinds=KINDS, source="g", produced_at=T0), STATIONS),
        InvalidReading,
        reasons=REASONS,
        shown=raw,
    )


# -- JMA's AMeDAS 10-minute maps ---------------------------------------------------------------------------------
pairs = st.lists(st.none() | numbers | json_values, min_size=2, max_size=2) | json_values
station_entries = st.dictionaries(st.sampled_from([*ELEMENTS, "temp", "snow"]), pairs, max_size=4) | json_values
maps = near_valid(
    {"41277": {"precipitation10m": [0.5, 0], "precipitation1h": [12.0, 0], "precipitation24h": [None, 5]}},
    st.dictionaries(st.sampled_from(list(ELEMENTS)), pairs, max_size=3) | json_values,
) | st.dictionaries(st.sampled_from(["41277", "46106", "00000"]) | awkward_text, station_entries, max_size=4)


def _readings_of_map(data: bytes) -> list:
    return readings_of(parse_map(data), {"41277": None, "46106": None}, T0)


@settings(max_examples=examples(300))
@given(
    data=maps.map(lambda m: json.dumps(m).encode())
    | maps.map(lambda m: json.dumps(m).encode()).flatmap(mutated)
    | st.binary(max_size=128)
)
@example(data=b'{"41277": {"precipitation1h": [1' + b"0" * 400 + b", 0]}}")  # found: OverflowError in float()
@example(data=deep(10_000))  # found: RecursionError out of the poller's json.loads
def test_any_map_file_gives_readings_or_a_layout_error(data):
    result = check("amedas.map", lambda: _readings_of_map(data), LayoutError, shown=data)
    if not isinstance(result, LayoutError):
        for record in result:
            assert all(m["value"] is None or m["value"] == m["value"] for m in record["measurements"])


@given(text=dates | awkward_text | st.binary(max_size=64).map(lambda b: b.decode("utf-8", "replace")))
@example(text="0001-01-01T00:00:00+09:00")  # found: a year-1 time reached the poller (map file name: ValueError)
def test_any_latest_time_is_a_ten_minute_step_the_poller_can_name_or_a_layout_error(text):
    result = check("amedas.latest_time", lambda: parse_latest_time(text), LayoutError, shown=text)
    if not isinstance(result, LayoutError):
        assert map_file(result).startswith("map/")
