"""The archive on disk without a broker: GeoParquet any Parquet tool reads, only committed files counted, strays
removed, compaction that keeps every row once, and the DuckDB queries over it."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import shapely

from streams.history.layout import to_compact
from streams.history.query import Filter
from streams.history.reader import ArchiveReader
from streams.history.rows import Source, reading_row
from streams.history.store import ArchiveStore
from streams.kernel.errors import BosaiError
from tests.support.history_archive import HOUR, T0, enriched, make_archive, stations_of


def test_files_are_geoparquet_with_their_offsets_in_their_metadata(tmp_path, tochigi, tochigi_topics):
    store = make_archive(tmp_path, tochigi, tochigi_topics)
    manifest = store.manifest()
    readings = manifest.files_of("readings")[0]

    parquet = pq.ParquetFile(tmp_path / readings.path)
    metadata = parquet.schema_arrow.metadata
    geo = json.loads(metadata[b"geo"])
    bosai = json.loads(metadata[b"bosai"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB" and len(geo["columns"]["geometry"]["bbox"]) == 4
    assert bosai["offsets"] == {tochigi_topics.enriched: {"0": [0, 1]}}
    table = parquet.read()
    point = shapely.from_wkb(table.column("geometry")[0].as_py())
    assert point.geom_type == "Point" and 139 < point.x < 141
    assert str(table.schema.field("observed_at").type) == "timestamp[ms, tz=UTC]"


def test_a_file_no_manifest_names_is_never_read_and_is_removed_on_start(tmp_path, tochigi, tochigi_topics):
    store = make_archive(tmp_path, tochigi, tochigi_topics, hours=2)
    committed = store.manifest()
    key, row = reading_row(enriched("41277", T0 + 9 * HOUR, 5.0), Source("x", 0, 99), stations_of(tochigi))
    store.write(key, [row], sequence=committed.sequence + 1, index=0, offsets={"x": {0: (99, 99)}})  # no commit
    (tmp_path / "readings" / "cut-short.parquet.tmp").write_bytes(b"PAR1")
    reader = ArchiveReader(tmp_path)

    assert reader.count(Filter("readings")) == 4  # 2 hours x 2 stations: the uncommitted row is not read
    removed = ArchiveStore(tmp_path).remove_strays(committed)
    assert len(removed) == 2 and reader.count(Filter("readings")) == 4


def test_readings_of_a_station_in_a_half_open_range_in_event_time_order(tmp_path, tochigi, tochigi_topics):
    make_archive(tmp_path, tochigi, tochigi_topics)
    where = Filter("readings", since_ms=T0 + HOUR, until_ms=T0 + 4 * HOUR, station_ids=("41277",))

    rows = ArchiveReader(tmp_path).rows(where)

    assert [r["observed_ms"] for r in rows] == [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]
    values = [{m["quantity"]: m["value"] for m in r["measurements"]}["precipitation_1h"] for r in rows]
    assert values == [1.0, None, 3.0]  # the missing hour stays missing, never 0
    assert [r["quality"] for r in rows] == ["OK", "MISSING", "OK"]


def test_alerts_of_a_municipality_and_public_only(tmp_path, tochigi, tochigi_topics):
    make_archive(tmp_path, tochigi, tochigi_topics)
    reader = ArchiveReader(tmp_path)

    assert len(reader.rows(Filter("alerts", municipality="09201"))) == 3
    assert len(reader.rows(Filter("alerts", municipality="09201", public=True))) == 2
    assert reader.rows(Filter("alerts", municipality="09999")) == []
    assert ArchiveReader(tmp_path / "nothing").rows(Filter("alerts")) == []


def test_compaction_merges_a_days_files_into_one_with_every_row_once(tmp_path, tochigi, tochigi_topics):
    store = make_archive(tmp_path, tochigi, tochigi_topics)
    manifest = store.manifest()
    before = sorted((r["kafka_topic"], r["kafka_offset"]) for r in ArchiveReader(tmp_path).rows(Filter("readings")))
    [group] = [g for g in to_compact(manifest, min_files=3, before_date="2023-09-05") if g[0].key.dataset == "readings"]

    merged = store.compact(group, sequence=manifest.sequence + 1)
    store.commit(manifest.replaced(group, merged, 0))
    store.remove_strays(store.manifest())

    after = sorted((r["kafka_topic"], r["kafka_offset"]) for r in ArchiveReader(tmp_path).rows(Filter("readings")))
    assert after == before and len(store.manifest().files_of("readings")) == 1
    assert len(list((tmp_path / "readings").rglob("*.parquet"))) == 1


def test_one_archiver_writes_a_folder_at_a_time(tmp_path):
    store = ArchiveStore(tmp_path)
    with store.writer_lock():
        with pytest.raises(BosaiError, match="another archiver writes to this archive"):
            with ArchiveStore(tmp_path).writer_lock():
                pass
    with ArchiveStore(tmp_path).writer_lock():  # released when the first one ends
        pass
