"""Synthetic but realistic load for the benchmark: a region pack with N stations inside the real
Tochigi municipality polygons (and optional hazard zones), and rain readings of which a share
crosses the JMA thresholds."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import shapely
import yaml
from shapely.geometry import shape

BASE_MS = 1_693_753_200_000  # 2023-09-04T00:00+09:00
STEP_MS = 600_000  # every station reports every 10 minutes


def make_pack(out: Path, *, stations: int, zones: int, seed: int, tochigi: Path) -> Path:
    """A valid pack named 'bench': Tochigi's boundaries and rules, random stations and square zones."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy(tochigi / "municipalities.geojson", out / "municipalities.geojson")
    shutil.copy(tochigi / "rules.yaml", out / "rules.yaml")
    features = json.loads((tochigi / "municipalities.geojson").read_text())["features"]
    area = shapely.union_all([shape(f["geometry"]) for f in features])
    rng = np.random.default_rng(seed)
    points = _points_inside(area, stations + zones, rng)
    with open(out / "stations.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["station_id", "kind", "name_ja", "name_en", "lat", "lon", "alt_m"])
        for i, (lon, lat) in enumerate(points[:stations]):
            writer.writerow([f"B{i:06d}", "rain_gauge", f"観測点{i}", f"gauge {i}", f"{lat:.6f}", f"{lon:.6f}", "100"])
    half = 0.0015  # about 300 m squares
    zone_features = [
        {
            "type": "Feature",
            "properties": {"zone": f"Z{i:06d}", "rank": int(1 + i % 4)},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [lon - half, lat - half],
                        [lon + half, lat - half],
                        [lon + half, lat + half],
                        [lon - half, lat + half],
                        [lon - half, lat - half],
                    ]
                ],
            },
        }
        for i, (lon, lat) in enumerate(points[stations:])
    ]
    (out / "zones.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": zone_features}))
    manifest = {
        "format": 1,
        "name": "bench",
        "prefecture_code": "09",
        "prefecture_name": "栃木県 (benchmark)",
        "designated_cities": {},
        "files": {"municipalities": "municipalities.geojson", "stations": "stations.csv", "rules": "rules.yaml"},
        "hazard_zones": [{"file": "zones.geojson", "kind": "flood_inundation", "id": "bench-{zone}", "rank": "rank"}]
        if zones
        else [],
        "geofence": {"nearest_max_distance_m": 5000},
    }
    (out / "region.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    return out


def _points_inside(area, n: int, rng) -> np.ndarray:
    minx, miny, maxx, maxy = area.bounds
    shapely.prepare(area)
    found = np.empty((0, 2))
    while len(found) < n:
        xy = np.column_stack([rng.uniform(minx, maxx, n * 2), rng.uniform(miny, maxy, n * 2)])
        found = np.vstack([found, xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])]])
    return found[:n]


def readings(
    stations: list[tuple[str, float, float]],
    count: int,
    *,
    cross_share: float,
    seed: int,
    stamp_produced_at: bool = False,
) -> Iterator[dict]:
    """Round-robin over stations, every 10 minutes of event time per station; about `cross_share` of
    the values at or above the first JMA band (20 mm/h), a few up to 'extreme'."""
    rng = np.random.default_rng(seed)
    n = len(stations)
    heavy = rng.random(count) < cross_share
    values = np.where(
        heavy,
        rng.choice([22.0, 35.0, 55.0, 85.0], count, p=[0.6, 0.25, 0.1, 0.05]),
        np.round(rng.exponential(1.5, count), 1),
    )
    for i in range(count):
        station_id, lat, lon = stations[i % n]
        value = float(values[i])
        yield {
            "station_id": station_id,
            "sensor_kind": "RAIN_GAUGE",
            "observed_at": BASE_MS + (i // n) * STEP_MS,
            "location": {"lat": lat, "lon": lon, "alt_m": 100.0},
            "measurements": [{"quantity": "precipitation_1h", "value": value, "unit": "mm"}],
            "quality": "OK",
            "source": "bench",
            "produced_at": None,
        }
