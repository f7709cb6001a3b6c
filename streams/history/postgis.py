"""The archive in PostGIS (``bosai archive --postgis DSN``): the same rows, exactly once, in PostgreSQL tables.

One table per dataset (``bosai_readings``, ``bosai_alerts``, ``bosai_official``, ``bosai_deadletters``): the Kafka
coordinates (the primary key), the region, the event time (``timestamptz``), the station where there is one, the
point as ``geometry(Point, 4326)`` and the whole row as ``jsonb`` (binary values base64). The offset every
topic-partition has reached is in ``bosai_archive_offsets``, written **in the same transaction** as the rows of
a flush: a crash before the commit loses both, after it keeps both, so the archiver resumes from that table
exactly once. ``pg_try_advisory_lock`` keeps one archiver per database.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from streams.history.rows import Row
from streams.kernel.errors import BosaiError

TIME_COLUMN = {"readings": "observed_at", "alerts": "observed_at", "official": "fetched_at", "deadletters": "failed_at"}
LOCK_KEY = 0x626F736169  # "bosai": the advisory lock of the one archiver
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE IF NOT EXISTS bosai_archive_offsets (
    topic text NOT NULL, kafka_partition integer NOT NULL, next_offset bigint NOT NULL,
    PRIMARY KEY (topic, kafka_partition));
"""
TABLE = """
CREATE TABLE IF NOT EXISTS bosai_{dataset} (
    kafka_topic text NOT NULL, kafka_partition integer NOT NULL, kafka_offset bigint NOT NULL,
    region text NOT NULL, event_time timestamptz NOT NULL, station_id text, data jsonb NOT NULL,
    geom geometry(Point, 4326),
    PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset));
CREATE INDEX IF NOT EXISTS bosai_{dataset}_time ON bosai_{dataset} (station_id, event_time);
CREATE INDEX IF NOT EXISTS bosai_{dataset}_geom ON bosai_{dataset} USING gist (geom);
"""


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def row_record(dataset: str, row: Row) -> tuple[Any, ...]:
    """One row as the table's columns (the geometry as WKB, turned into a point by PostGIS)."""
    data = {k: _json_value(v) for k, v in row.items() if k != "geometry"}
    return (
        row["kafka_topic"],
        row["kafka_partition"],
        row["kafka_offset"],
        row["region"],
        row[TIME_COLUMN[dataset]],
        row.get("station_id"),
        json.dumps(data, ensure_ascii=False),
        row.get("geometry"),
    )


class PostgisStore:
    """One PostgreSQL database with PostGIS, holding the archive's tables and offsets."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.dsn)
        except psycopg.Error as exc:
            raise BosaiError(f"PostGIS ({self.where}): cannot connect: {exc}".strip()) from None

    @property
    def where(self) -> str:
        """The DSN without its password, for messages."""
        info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        info.pop("password", None)
        return " ".join(f"{k}={v}" for k, v in info.items())

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """The database's one archiver (a session advisory lock, held while the archiver runs)."""
        with self._connect() as connection:
            found = connection.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
            if not found or not found[0]:
                raise BosaiError(f"PostGIS ({self.where}): another archiver writes to this database")
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))

    def ensure_schema(self, datasets: Sequence[str]) -> None:
        with self._connect() as connection, connection.transaction():
            connection.execute(SCHEMA)
            for dataset in datasets:
                connection.execute(TABLE.format(dataset=dataset))

    def offsets(self) -> dict[str, dict[int, int]]:
        """Where every archived topic-partition continues from."""
        with self._connect() as connection:
            found: dict[str, dict[int, int]] = {}
            for topic, partition, offset in connection.execute(
                "SELECT topic, kafka_partition, next_offset FROM bosai_archive_offsets"
            ):
                found.setdefault(topic, {})[partition] = offset
            return found

    def commit(self, rows: Mapping[str, Sequence[Row]], positions: Mapping[str, Mapping[int, int]]) -> int:
        """Insert the rows of each dataset and move the offsets on, in one transaction; the rows inserted."""
        inserted = 0
        with self._connect() as connection, connection.transaction(), connection.cursor() as cursor:
            for dataset, items in rows.items():
                if not items:
                    continue
                cursor.executemany(
                    f"INSERT INTO bosai_{dataset} (kafka_topic, kafka_partition, kafka_offset, region, event_time, "
                    "station_id, data, geom) VALUES (%s, %s, %s, %s, to_timestamp(%s / 1000.0), %s, %s::jsonb, "
                    "ST_GeomFromWKB(%s, 4326))",
                    [row_record(dataset, row) for row in items],
                )
                inserted += len(items)
            cursor.executemany(
                "INSERT INTO bosai_archive_offsets (topic, kafka_partition, next_offset) VALUES (%s, %s, %s) "
                "ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(topic, partition, offset) for topic, ps in positions.items() for partition, offset in ps.items()],
            )
        return inserted

    def count(self, dataset: str) -> int:
        with self._connect() as connection:
            found = connection.execute(f"SELECT count(*) FROM bosai_{dataset}").fetchone()
            return int(found[0]) if found else 0
