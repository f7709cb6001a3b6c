"""Fixtures of the official-information tests: a pack per prefecture of the team's shared N03 data."""

from __future__ import annotations

import re

import pytest

from streams.packs.region_init import init_pack
from tests.support.all_hazards import SHARED_N03


@pytest.fixture(scope="session")
def prefecture_packs(tmp_path_factory):
    """A pack per prefecture with N03 in the shared data, built by region init (about 40 s for 45), by code."""
    if not SHARED_N03.is_dir():
        pytest.skip(f"the team's shared N03 data is not at {SHARED_N03} (set BOSAI_SHARED_DATA)")
    root = tmp_path_factory.mktemp("all-prefectures")
    built = {}
    for path in sorted(SHARED_N03.glob("N03-21_*.geojson")):
        code = re.search(r"_(\d\d)\.geojson$", path.name).group(1)
        built[code] = init_pack(f"p{code}", path, None, root / code)
    return built
