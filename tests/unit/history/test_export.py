"""`bosai history export`: the archive's public data as open-data files, described by a DCAT catalog whose sizes
and checksums are those of the files; nothing internal (Kafka coordinates, topics, non-public data) leaves."""

from __future__ import annotations

import csv
import hashlib
import json

import pyarrow.parquet as pq
from click.testing import CliRunner

from streams.cli import cli
from tests.support.history_archive import make_archive


def test_export_writes_public_files_and_a_dcat_catalog_that_describes_them(tmp_path, tochigi, tochigi_topics):
    make_archive(tmp_path / "archive", tochigi, tochigi_topics)
    out = tmp_path / "open"

    result = CliRunner().invoke(
        cli,
        ["history", "export", "--history", str(tmp_path / "archive"), "--region", "regions/tochigi"]
        + ["--output", str(out), "--base-url", "https://data.example.lg.jp/bosai/"],
    )

    assert result.exit_code == 0, result.output
    catalog = json.loads((out / "catalog.jsonld").read_text())
    assert catalog["@type"] == "dcat:Catalog" and catalog["dct:license"]["@id"].endswith("/by/4.0/")
    datasets = {d["dct:identifier"]: d for d in catalog["dcat:dataset"]}
    assert set(datasets) == {"readings", "alerts"}
    for dataset in datasets.values():
        assert "気象庁" in dataset["dct:rights"]
        for distribution in dataset["dcat:distribution"]:
            data = (out / distribution["dct:title"]).read_bytes()
            assert distribution["dcat:byteSize"]["@value"] == str(len(data))
            assert distribution["spdx:checksum"]["spdx:checksumValue"] == hashlib.sha256(data).hexdigest()
            assert distribution["dcat:downloadURL"]["@id"].startswith("https://data.example.lg.jp/bosai/")
    assert datasets["readings"]["dct:temporal"]["dcat:startDate"]["@value"] == "2023-09-04T14:00:00+09:00"
    rows = list(csv.DictReader((out / "readings.csv").open()))
    assert len(rows) == 12 and [r["precipitation_1h"] for r in rows if r["quality"] == "MISSING"] == [""]
    alerts = json.loads((out / "alerts.geojson").read_text())["features"]
    assert [a["properties"]["sharing_level"] for a in alerts] == ["PUBLIC", "PUBLIC"]
    for name in ("readings.parquet", "alerts.parquet"):
        parquet = pq.ParquetFile(out / name)
        assert b"geo" in parquet.schema_arrow.metadata
        assert not {"kafka_topic", "kafka_offset", "topics"} & set(parquet.schema_arrow.names)
    assert pq.read_table(out / "alerts.parquet").num_rows == 2
