"""The open-data catalog of an export, as DCAT (W3C Data Catalog Vocabulary, DCAT-AP style) in JSON-LD.

One ``dcat:Dataset`` per exported dataset (public readings, public alerts), each with its distributions
(GeoParquet, CSV, GeoJSON: media type, byte size, SHA-256), its temporal and spatial coverage, the licence
(CC BY 4.0) and the credit JMA's terms ask for (出典：気象庁). Nothing here reads a file: the export passes in
what it wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streams.kernel.times import jst_iso

LICENSE = "https://creativecommons.org/licenses/by/4.0/"
CREDIT = "出典：気象庁 (source: Japan Meteorological Agency), processed by the bosai hub"
CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "locn": "http://www.w3.org/ns/locn#",
    "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
MEDIA_TYPES = {".parquet": "application/vnd.apache.parquet", ".csv": "text/csv", ".geojson": "application/geo+json"}


@dataclass(frozen=True)
class Distribution:
    file: str  # relative to the catalog
    byte_size: int
    sha256: str
    rows: int


@dataclass(frozen=True)
class ExportedDataset:
    id: str  # readings | alerts
    title: str
    description: str
    distributions: tuple[Distribution, ...]
    first_ms: int | None
    last_ms: int | None
    bbox: tuple[float, float, float, float] | None
    keywords: tuple[str, ...] = ()


def _media_type(file: str) -> str:
    for suffix, media in MEDIA_TYPES.items():
        if file.endswith(suffix):
            return media
    return "application/octet-stream"


def _bbox_wkt(bbox: tuple[float, float, float, float]) -> str:
    w, s, e, n = bbox
    return f"POLYGON(({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"


def dataset_document(base: str, dataset: ExportedDataset, issued: str, publisher: str) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@id": f"{base}#{dataset.id}",
        "@type": "dcat:Dataset",
        "dct:identifier": dataset.id,
        "dct:title": dataset.title,
        "dct:description": dataset.description,
        "dct:issued": {"@value": issued, "@type": "xsd:dateTime"},
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": publisher},
        "dct:license": {"@id": LICENSE},
        "dct:rights": CREDIT,
        "dcat:keyword": list(dataset.keywords),
        "dcat:distribution": [
            {
                "@type": "dcat:Distribution",
                "dct:title": d.file,
                "dcat:downloadURL": {"@id": f"{base}{d.file}"},
                "dcat:mediaType": _media_type(d.file),
                "dcat:byteSize": {"@value": str(d.byte_size), "@type": "xsd:nonNegativeInteger"},
                "spdx:checksum": {
                    "@type": "spdx:Checksum",
                    "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                    "spdx:checksumValue": d.sha256,
                },
                "dct:license": {"@id": LICENSE},
                "dct:description": f"{d.rows:,} rows",
            }
            for d in dataset.distributions
        ],
    }
    if dataset.first_ms is not None and dataset.last_ms is not None:
        document["dct:temporal"] = {
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": {"@value": jst_iso(dataset.first_ms), "@type": "xsd:dateTime"},
            "dcat:endDate": {"@value": jst_iso(dataset.last_ms), "@type": "xsd:dateTime"},
        }
    if dataset.bbox is not None:
        document["dct:spatial"] = {
            "@type": "dct:Location",
            "dcat:bbox": {
                "@value": _bbox_wkt(dataset.bbox),
                "@type": "http://www.opengis.net/ont/geosparql#wktLiteral",
            },
        }
    return document


def catalog(
    base: str, datasets: Sequence[ExportedDataset], *, issued: str, publisher: str, title: str
) -> dict[str, Any]:
    """The export's ``catalog.jsonld``: a dcat:Catalog of its datasets (``base``: where the files are served)."""
    return {
        "@context": CONTEXT,
        "@id": base,
        "@type": "dcat:Catalog",
        "dct:title": title,
        "dct:description": "Public observations and alerts of the disaster-data hub, exported from its archive.",
        "dct:issued": {"@value": issued, "@type": "xsd:dateTime"},
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": publisher},
        "dct:license": {"@id": LICENSE},
        "dcat:dataset": [dataset_document(base, d, issued, publisher) for d in datasets],
    }
