"""Fixtures of the official-information tests: a pack per prefecture of the N03 data in the repo."""

from __future__ import annotations

import re

import pytest

from streams.packs.region_init import init_pack
from tests.support.all_hazards import NATIONAL_N03


@pytest.fixture(scope="session")
def prefecture_packs(tmp_path_factory):
    """A pack per prefecture with N03 in data/n03/japan, built by region init (about 40 s for 45), by code."""
    root = tmp_path_factory.mktemp("all-prefectures")
    built = {}
    for path in sorted(NATIONAL_N03.glob("N03-21_*.geojson.gz")):
        code = re.search(r"_(\d\d)\.geojson\.gz$", path.name).group(1)
        built[code] = init_pack(f"p{code}", path, None, root / code)
    return built
