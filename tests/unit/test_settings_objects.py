"""The settings objects of `bosai replay` and `bosai feed`: made once, checked once, with a clear refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.delivery.feed_server import FeedSettings
from streams.hub.replay import ReplaySettings
from streams.kernel.errors import BosaiError, SettingsError
from streams.packs.region_pack import load_pack
from streams.platform.topic_catalog import default_catalog_path, load_catalog


@pytest.fixture(scope="module")
def tochigi(project_root):
    return load_pack(project_root / "regions" / "tochigi")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(default_catalog_path())


def _replay(tochigi, catalog, **changes):
    settings = {
        "packs": [tochigi],
        "catalog": catalog,
        "bootstrap": "127.0.0.1:9092",
        "prefix": "replay-test",
        "log_dir": Path("logs"),
        "csv_path": Path("readings.csv.gz"),
    }
    return ReplaySettings(**{**settings, **changes})


def _feed(**changes):
    settings = {
        "bootstrap": "127.0.0.1:9092",
        "topics": ["bosai.tochigi.alerts"],
        "clients_bootstrap": "127.0.0.1:9094",
        "ca_file": Path("ca.pem"),
        "host": "127.0.0.1",
        "port": 8090,
        "auth_cache_s": 30.0,
    }
    return FeedSettings(**{**settings, **changes})


def test_replay_settings_keep_what_they_were_given(tochigi, catalog):
    settings = _replay(tochigi, catalog, speed=3600.0, replicas=2, jma_paths=[Path("report.xml")])

    assert settings.speed == 3600.0 and settings.replicas == 2 and settings.start_workers
    assert settings.csv_path == Path("readings.csv.gz") and list(settings.jma_paths) == [Path("report.xml")]


@pytest.mark.parametrize(
    "changes, setting",
    [
        ({"packs": []}, "packs"),
        ({"csv_path": None}, "input"),  # neither readings nor official reports
        ({"prefix": ""}, "prefix"),
        ({"speed": 0.0}, "speed"),
        ({"speed": -2.0}, "speed"),
        ({"timeout_s": 0.0}, "timeout_s"),
        ({"replicas": 0}, "replicas"),
        ({"workers": -1}, "workers"),
    ],
)
def test_replay_settings_refuse_what_cannot_run(tochigi, catalog, changes, setting):
    with pytest.raises(SettingsError) as caught:
        _replay(tochigi, catalog, **changes)

    assert caught.value.setting == setting
    assert isinstance(caught.value, BosaiError)  # the CLI prints it as one line, exit 2
    assert str(caught.value).startswith(f"replay: {setting} is ") and "(expected " in str(caught.value)


def test_feed_settings_keep_what_they_were_given():
    settings = _feed(port=0, failure_cache_s=0.0, handshakes_per_s=0.5)

    assert settings.port == 0 and settings.failure_cache_s == 0.0 and settings.handshakes_per_s == 0.5
    assert list(settings.topics) == ["bosai.tochigi.alerts"] and settings.trusted_proxies == ()


@pytest.mark.parametrize(
    "changes, setting",
    [
        ({"topics": []}, "topics"),
        ({"port": 70000}, "port"),
        ({"port": -1}, "port"),
        ({"auth_cache_s": -1.0}, "auth_cache_s"),
        ({"failure_cache_s": float("nan")}, "failure_cache_s"),
        ({"handshakes_per_s": 0.0}, "handshakes_per_s"),
    ],
)
def test_feed_settings_refuse_what_cannot_serve(changes, setting):
    with pytest.raises(SettingsError) as caught:
        _feed(**changes)

    assert caught.value.setting == setting and str(caught.value).startswith(f"feed: {setting} is ")
