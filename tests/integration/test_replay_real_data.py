"""The hub's main job on the real broker with the real AMeDAS data of the heavy rain of 2023-09-04..06."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.hub.replay import ReplaySettings, run_replay
from streams.kernel.times import parse_jst
from streams.packs.region_pack import load_pack
from streams.platform.avro import default_store
from streams.platform.topic_catalog import default_catalog_path, load_catalog

CSV = "data/amedas/tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz"


def _replay(root: Path, bootstrap: str, prefix: str, speed: float | None, log_dir: Path):
    settings = ReplaySettings(
        [load_pack(root / "regions" / "tochigi")],
        load_catalog(default_catalog_path()),
        csv_path=root / CSV,
        bootstrap=bootstrap,
        prefix=prefix,
        since_ms=parse_jst("2023-09-04", option="--from"),
        until_ms=parse_jst("2023-09-07", option="--to"),
        speed=speed,
        timeout_s=180,
        log_dir=log_dir,
    )
    return run_replay(settings, default_store(), print)


@pytest.fixture(scope="module")
def at_max_speed(kafka_bootstrap, project_root, tmp_path_factory):
    return _replay(project_root, kafka_bootstrap, "itmax", None, tmp_path_factory.mktemp("logs"))


@pytest.fixture(scope="module")
def at_finite_speed(kafka_bootstrap, project_root, tmp_path_factory):
    # 72 hours of event time at 36,000x: about 7 s of paced production
    return _replay(project_root, kafka_bootstrap, "itpaced", 36_000.0, tmp_path_factory.mktemp("logs"))


def _very_heavy(result, station_id: str) -> list[dict]:
    return [
        a
        for a in result.alerts
        if a["station_id"] == station_id
        and a["rule"] == "rain_1h"
        and a["level"] == "very_heavy"
        and a["msg_type"] in ("ALERT", "UPDATE")
    ]


@pytest.mark.parametrize(
    "station_id, day, municipality",
    [("41277", "2023-09-04", "09201"), ("41331", "2023-09-04", "09209"), ("41172", "2023-09-05", "09206")],
)
def test_very_heavy_rain_is_raised_for_utsunomiya_mooka_and_nikko(at_max_speed, station_id, day, municipality):
    alerts = _very_heavy(at_max_speed, station_id)

    assert any(a["observed_at"].startswith(day) for a in alerts)
    for alert in alerts:
        assert alert["municipalities"] == [municipality]
        assert alert["severity"] == "Severe"


def test_alerts_reach_their_municipality_topic_and_no_other(at_max_speed):
    prefix = "itmax.tochigi"
    for alert in at_max_speed.alerts:
        municipal = {t.rsplit(".", 1)[1] for t in alert["topics"] if t.rsplit(".", 1)[1].isdigit()}
        assert f"{prefix}.alerts" in alert["topics"]
        if alert["sharing_level"] == "INTERNAL":
            assert municipal == set()
        else:
            assert municipal == set(alert["municipalities"])
        assert (f"{prefix}.alerts.public" in alert["topics"]) == (alert["sharing_level"] == "PUBLIC")
    utsunomiya = _very_heavy(at_max_speed, "41277")[0]
    assert f"{prefix}.alerts.09201" in utsunomiya["topics"]
    assert f"{prefix}.alerts.09209" not in utsunomiya["topics"]


def test_every_alert_raised_is_eventually_cleared(at_max_speed):
    open_episodes: dict[str, dict] = {}
    for alert in at_max_speed.alerts:
        if alert["msg_type"] == "CANCEL":
            assert open_episodes.pop(alert["alert_id"])["sequence"] == alert["sequence"] - 1
        else:
            open_episodes[alert["alert_id"]] = alert

    assert at_max_speed.alerts and open_episodes == {}
    assert at_max_speed.dead_letters == 0 and at_max_speed.drained


def test_max_and_finite_speed_give_identical_alert_ids_and_sequences(at_max_speed, at_finite_speed):
    def comparable(result, prefix):
        return [{**a, "topics": [t.removeprefix(prefix) for t in a["topics"]]} for a in result.alerts]

    assert comparable(at_max_speed, "itmax.") == comparable(at_finite_speed, "itpaced.")
    assert at_finite_speed.produce_s > 3 * at_max_speed.produce_s
