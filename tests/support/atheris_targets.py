"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers of outside input: one target per kind of input.

Run by tests/fuzz/test_fuzz_atheris.py in a subprocess (libFuzzer exits the process when it is done)::

    python -m tests.support.atheris_targets TARGET [libFuzzer flags…] CORPUS_DIR [SEED_DIR…]

Each target feeds the bytes to the hub's own code, as the hub reads them, and lets only the module's documented
error type pass: anything else propagates, and atheris reports it as a crash (with the input saved under
``-artifact_prefix``). The hub's modules are instrumented for coverage (``streams`` only).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["streams"]):
    from streams.fiware.ngsi_in import default_mapping, entity_record, parse_notification
    from streams.gateway.intake import reading_record, readings_in
    from streams.kernel.errors import ConfigError
    from streams.kernel.messages import InMessage
    from streams.kernel.model import SensorKind, Station
    from streams.kernel.topics import HubTopics
    from streams.observed.amedas_csv import read_amedas
    from streams.observed.amedas_map import LayoutError, parse_latest_time, parse_map, readings_of
    from streams.observed.lifecycle import StationState
    from streams.observed.pipeline import Pipeline
    from streams.observed.readings import InvalidReading, validate
    from streams.official.jma_xml import JmaXmlError, parse_feed, parse_report
    from streams.official.report import ReportError, prefectures_of, read_report
    from streams.packs.region_pack import load_pack
    from streams.packs.station_file import load_stations
    from streams.platform.avro import ALERT, DEAD_LETTER, OFFICIAL_REPORT, READING, AvroCodec, CodecError, default_store
    from streams.platform.checks import Problems
    from streams.platform.topic_catalog import default_catalog_path, load_catalog

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_693_807_200_000


def _avro():
    store = default_store()
    codecs = [AvroCodec(store, name) for name in (READING, ALERT, DEAD_LETTER, OFFICIAL_REPORT)]
    pack = load_pack(ROOT / "regions" / "kanagawa")
    pipeline = Pipeline(pack, HubTopics.for_region(load_catalog(default_catalog_path()), pack), store)

    def one(data: bytes) -> None:
        for codec in codecs:
            try:
                codec.decode(data)
            except CodecError:
                pass
        message = InMessage("bosai.kanagawa.readings.raw", 0, 0, b"k", data, T0)
        pipeline.process([message], lambda _sid: StationState())  # (a batch never raises)

    return one


def _jma_report():
    def one(data: bytes) -> None:
        try:
            report = read_report(parse_report(data))
            _ = report.order, report.key, report.status, prefectures_of(report)
        except (JmaXmlError, ReportError):
            pass

    return one


def _jma_feed():
    def one(data: bytes) -> None:
        try:
            parse_feed(data)
        except JmaXmlError:
            pass

    return one


def _json_doors():
    stations = {
        "R-1": Station("R-1", SensorKind.RIVER_LEVEL_GAUGE, "川", "river", 36.9, 140.0, municipality_code="09213"),
        "41277": Station("41277", SensorKind.RAIN_GAUGE, "宇都宮", "U", 36.55, 139.87, municipality_code="09201"),
    }
    mappings = {("o", "urn:river"): default_mapping("o", "urn:river", stations["R-1"])}
    kinds = {"R-1": "RIVER_LEVEL_GAUGE", "41277": "RAIN_GAUGE"}

    def one(data: bytes) -> None:
        try:
            for raw in readings_in(data):
                try:
                    validate(reading_record(raw, sensor_kinds=kinds, source="g", produced_at=T0), stations)
                except InvalidReading:
                    pass
        except InvalidReading:
            pass
        try:
            for entity in parse_notification(data):
                try:
                    record = entity_record(
                        entity, orion="o", fmt_header=None, mappings=mappings, stations=stations, produced_at=T0
                    )
                    validate(record, stations)
                except InvalidReading:
                    pass
        except InvalidReading:
            pass
        try:
            readings_of(parse_map(data), {"41277": None}, T0)
        except LayoutError:
            pass
        try:
            parse_latest_time(data.decode("utf-8", "replace"))
        except LayoutError:
            pass

    return one


def _csv():
    folder = Path(tempfile.mkdtemp(prefix="bosai-atheris-csv-"))

    def one(data: bytes) -> None:
        for name in ("amedas.csv", "amedas.csv.gz"):
            path = folder / name
            path.write_bytes(data)
            try:
                read_amedas(path)
            except ConfigError:
                pass
        path = folder / "stations.csv"
        path.write_bytes(data)
        load_stations(path, Problems())  # (problems are recorded, never raised)

    return one


TARGETS = {"avro": _avro, "jma_report": _jma_report, "jma_feed": _jma_feed, "json_doors": _json_doors, "csv": _csv}


def main() -> None:
    target = TARGETS[sys.argv[1]]()
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
