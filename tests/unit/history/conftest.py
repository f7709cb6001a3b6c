"""The Tochigi pack and its topics, for the archive's tests."""

from __future__ import annotations

import pytest

from streams.kernel.topics import HubTopics
from streams.packs.region_pack import load_pack
from streams.platform.topic_catalog import load_default_catalog


@pytest.fixture(scope="session")
def tochigi(project_root):
    return load_pack(project_root / "regions" / "tochigi")


@pytest.fixture(scope="session")
def tochigi_topics(tochigi):
    return HubTopics.for_region(load_default_catalog(), tochigi)
