"""Geofence benchmark: how long a pack takes to load and how many point look-ups per second it answers.

Points are drawn uniformly inside the region's bounding box (so some fall outside every
municipality and exercise the nearest fallback), with a fixed seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np


def run_geofence_bench(
    pack_dir: Path | None, *, points: int, seed: int, progress: Callable[[str], None]
) -> Iterator[str]:
    from streams.packs.region_pack import load_pack
    from streams.platform.settings import project_root

    pack_dir = pack_dir or project_root() / "regions" / "tochigi"
    started = time.perf_counter()
    pack = load_pack(pack_dir)
    load_s = time.perf_counter() - started
    index = pack.index
    minx, miny, maxx, maxy = index.bounds
    rng = np.random.default_rng(seed)
    lons = rng.uniform(minx, maxx, points)
    lats = rng.uniform(miny, maxy, points)

    singles = min(points, 20_000)
    progress(f"single look-ups: {singles:,} points …")
    started = time.perf_counter()
    for lat, lon in zip(lats[:singles].tolist(), lons[:singles].tolist(), strict=False):
        index.locate(lat, lon)
    single_s = time.perf_counter() - started

    progress(f"batch look-ups: {points:,} points in batches of 1,000 and one of {points:,} …")
    started = time.perf_counter()
    for start in range(0, points, 1000):
        index.locate_many(lats[start : start + 1000], lons[start : start + 1000])
    batch1k_s = time.perf_counter() - started
    started = time.perf_counter()
    result = index.locate_many(lats, lons)
    batch_all_s = time.perf_counter() - started

    resolved = result.municipality_index >= 0
    nearest = result.method == 2
    yield (
        f"pack {pack.name}: {len(pack.municipalities)} municipalities, {len(pack.zones)} zones, "
        f"loaded in {load_s * 1000:.0f} ms"
    )
    yield f"single  locate():          {singles / single_s:>12,.0f} lookups/s  ({singles:,} points)"
    yield f"batch   locate_many(1000): {points / batch1k_s:>12,.0f} lookups/s  ({points:,} points)"
    yield f"batch   locate_many(all):  {points / batch_all_s:>12,.0f} lookups/s  ({points:,} points)"
    yield (
        f"points in a municipality {int(resolved.sum() - nearest.sum()):,}, by nearest fallback "
        f"{int(nearest.sum()):,}, none {int((~resolved).sum()):,} (uniform over the bounding box)"
    )
