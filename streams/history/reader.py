"""Queries of the archive, in-process with DuckDB, over the files the committed manifest names (never a glob:
a file a crash left uncommitted is never read).

No DuckDB extension is installed or loaded at run time (``autoinstall``/``autoload`` off): the geometry stays
WKB, read with shapely where needed, and points are filtered by their ``lon``/``lat`` columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from streams.history.layout import Manifest
from streams.history.query import ORDER, Filter
from streams.history.store import ArchiveStore
from streams.kernel.errors import BosaiError

COLUMNS = {
    "readings": "region, station_id, sensor_kind, epoch_ms(observed_at) AS observed_ms, quality, source, "
    "municipality_code, measurements, lon, lat, alt_m, kafka_topic, kafka_partition, kafka_offset",
    "alerts": "* EXCLUDE (observed_at, expires, references_observed_at, geometry), epoch_ms(observed_at) AS "
    "observed_ms, epoch_ms(expires) AS expires_ms",
    "official": "* EXCLUDE (fetched_at, entry_updated, xml), epoch_ms(fetched_at) AS fetched_ms",
    "deadletters": "* EXCLUDE (failed_at, source_timestamp), epoch_ms(failed_at) AS failed_ms",
}


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that never downloads or loads an extension."""
    return duckdb.connect(
        ":memory:", config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )


class ArchiveReader:
    """Reads one archive folder (read-only: it never writes there)."""

    def __init__(self, root: Path):
        self.store = ArchiveStore(root)

    def manifest(self) -> Manifest:
        return self.store.manifest()

    def _files(self, manifest: Manifest, where: Filter) -> list[str]:
        files = manifest.files_of(where.dataset, regions=where.regions, dates=where.dates())
        return self.store.committed_paths(files)

    def _run(self, where: Filter, sql_of: Any) -> Any:
        """Run on the committed files; once more with a fresh manifest if compaction removed one meanwhile."""
        for attempt in (1, 2):
            files = self._files(self.manifest(), where)
            if not files:
                return None
            conditions, params = where.where()
            try:
                with connect() as con:
                    return sql_of(con, files, conditions, params)
            except duckdb.IOException as exc:
                if attempt == 2 or all(Path(f).exists() for f in files):
                    raise BosaiError(f"{self.store.root}: cannot read the archive: {exc}") from None
        return None

    def rows(
        self, where: Filter, *, limit: int | None = None, offset: int = 0, columns: str | None = None
    ) -> list[dict[str, Any]]:
        """The matching rows in event-time order, as dicts (times as epoch ms: ``observed_ms`` …)."""

        def query(con: duckdb.DuckDBPyConnection, files: list[str], conditions: str, params: list[Any]) -> Any:
            sql = (
                f"SELECT {columns or COLUMNS[where.dataset]} FROM read_parquet(?) WHERE {conditions} "
                f"ORDER BY {ORDER[where.dataset]}"
            )
            if limit is not None:
                sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
            # through Arrow: several times faster than DB-API tuples for the list columns (measurements)
            return con.sql(sql, params=[files, *params]).to_arrow_table().to_pylist()

        return self._run(where, query) or []

    def count(self, where: Filter) -> int:
        def query(con: duckdb.DuckDBPyConnection, files: list[str], conditions: str, params: list[Any]) -> Any:
            found = con.execute(f"SELECT count(*) FROM read_parquet(?) WHERE {conditions}", [files, *params]).fetchone()
            return int(found[0]) if found else 0

        return int(self._run(where, query) or 0)

    def table(self, where: Filter) -> pa.Table | None:
        """Every column of the matching rows, as Arrow (for a Parquet export)."""

        def query(con: duckdb.DuckDBPyConnection, files: list[str], conditions: str, params: list[Any]) -> Any:
            sql = f"SELECT * FROM read_parquet(?) WHERE {conditions} ORDER BY {ORDER[where.dataset]}"
            return con.sql(sql, params=[files, *params]).to_arrow_table()

        result = self._run(where, query)
        return result if isinstance(result, pa.Table) else None

    def time_extent(self, dataset: str, *, public: bool = False) -> tuple[int, int] | None:
        """The first and last event time of a dataset (epoch ms), or None when it is empty."""
        where = Filter(dataset, public=public)

        def query(con: duckdb.DuckDBPyConnection, files: list[str], conditions: str, params: list[Any]) -> Any:
            column = "observed_at" if dataset in ("readings", "alerts") else "fetched_at"
            return con.execute(
                f"SELECT epoch_ms(min({column})), epoch_ms(max({column})) FROM read_parquet(?) WHERE {conditions}",
                [files, *params],
            ).fetchone()

        found = self._run(where, query)
        if not found or found[0] is None:
            return None
        return int(found[0]), int(found[1])
