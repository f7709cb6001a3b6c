"""The platform's memory: every enriched reading, alert, official report and dead letter of every region,
archived exactly once into GeoParquet files (``archiver``; the files, the manifest that commits them with the
Kafka offsets they hold, compaction: ``store``) or into PostGIS (``postgis``: rows and offsets in one
transaction); where each row goes and what the manifest says (``layout``); records into rows and rows back into
the hub's words (``rows``); the queries (``query``: filters and paging; ``reader``: DuckDB over the committed
files); OGC API - Features over the archive (``ogc``, ``server``); open-data exports of its public data with a
DCAT catalog (``export``, ``dcat``).
"""

__requires__ = ("platform", "packs")

__layers__ = {
    "pure": ["layout", "rows", "query", "ogc", "dcat"],
    "files": ["store"],
    "io": ["reader", "export", "postgis"],
    "process": ["archiver", "server"],
}
