"""`bosai archive --postgis DSN`: the archiver's rows in PostGIS, rows and offsets in one transaction (a failed
flush leaves neither), one archiver per database. Against a throw-away PostgreSQL with PostGIS (Debian's
postgresql-15-postgis-3), started on a Unix socket and stopped by its pid; skipped where there is none, failed
under CI."""

from __future__ import annotations

from types import SimpleNamespace

import psycopg
import pytest

from streams.history.archiver import Archiver, ArchiveSettings
from streams.history.postgis import PostgisStore
from streams.kernel.errors import BosaiError
from streams.platform import kafka
from streams.platform.avro import ENRICHED, AvroCodec, default_store
from streams.platform.topic_catalog import load_default_catalog
from tests.support.history_archive import T0, enriched
from tests.support.postgres import throwaway_postgres


@pytest.fixture(scope="module")
def postgres_dsn():
    with throwaway_postgres() as dsn:
        yield dsn


def _message(offset: int, value: bytes) -> SimpleNamespace:
    return SimpleNamespace(offset=offset, key=b"k", value=value)


def test_rows_and_offsets_commit_together_and_a_failed_flush_leaves_neither(postgres_dsn, tochigi, tochigi_topics):
    settings = ArchiveSettings(None, [tochigi], load_default_catalog(), "127.0.0.1:9", postgis=postgres_dsn)
    archiver = Archiver(settings, default_store(), lambda _m: None)
    store = PostgisStore(postgres_dsn)
    store.ensure_schema(["readings", "alerts", "official", "deadletters"])
    codec = AvroCodec(default_store(), ENRICHED)
    tp = kafka.TopicPartition(tochigi_topics.enriched, 0)

    archiver._buffer(
        tp,
        [_message(0, codec.encode(enriched("41277", T0, None))), _message(1, codec.encode(enriched("41011", T0, 1.5)))],
    )
    archiver.manifest = archiver._commit(archiver.buffer, {tochigi_topics.enriched: {0: 2}})

    assert store.count("readings") == 2 and store.offsets() == {tochigi_topics.enriched: {0: 2}}
    with psycopg.connect(postgres_dsn) as connection:
        geometry, value, quality = connection.execute(
            "SELECT ST_AsText(geom), data->>'precipitation_1h', data->>'quality' FROM bosai_readings "
            "WHERE station_id = '41277'"
        ).fetchone()
    assert geometry.startswith("POINT(139.868") and value is None and quality == "MISSING"

    # the same record again (a bug, or two archivers): the whole flush fails, offsets included
    again = Archiver(settings, default_store(), lambda _m: None)
    again._buffer(
        tp,
        [
            _message(2, codec.encode(enriched("41277", T0 + 1, 2.0))),
            _message(1, codec.encode(enriched("41011", T0, 1.5))),
        ],
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        again._commit(again.buffer, {tochigi_topics.enriched: {0: 3}})
    assert store.count("readings") == 2 and store.offsets() == {tochigi_topics.enriched: {0: 2}}


def test_one_archiver_per_database(postgres_dsn):
    store = PostgisStore(postgres_dsn)
    with store.writer_lock():
        with pytest.raises(BosaiError, match="another archiver"):
            with PostgisStore(postgres_dsn).writer_lock():
                pass
    with PostgisStore(postgres_dsn).writer_lock():
        pass
    assert "password" not in PostgisStore(postgres_dsn + " password=secret").where
