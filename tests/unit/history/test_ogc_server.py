"""`bosai history serve`: OGC API - Features over a small archive (no broker): the landing page, conformance,
collections with extents, items with bbox / datetime / limit and paging links, public data only; and GDAL's
OAPIF driver (ogrinfo) lists the collections and reads features from the live server."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.history.server import HistoryService, build_app
from streams.kernel.times import jst_iso
from tests.support.history_archive import HOUR, T0, make_archive


@pytest.fixture
def app(tmp_path, tochigi, tochigi_topics):
    make_archive(tmp_path, tochigi, tochigi_topics)
    return build_app(HistoryService([tochigi], tmp_path))


async def _get(client, path, status=200):
    answer = await client.get(path)
    assert answer.status == status, await answer.text()
    return await answer.json(content_type=None)


async def test_landing_conformance_and_collections(app, tochigi):
    async with TestClient(TestServer(app)) as client:
        landing = await _get(client, "/")
        conformance = await _get(client, "/conformance")
        collections = await _get(client, "/collections")
        alerts = await _get(client, "/collections/alerts")
        await _get(client, "/collections/nope", 404)

    assert {link["rel"] for link in landing["links"]} >= {"self", "service-desc", "conformance", "data"}
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance["conformsTo"]
    assert [c["id"] for c in collections["collections"]] == ["stations", "municipalities", "alerts", "readings"]
    assert alerts["extent"]["temporal"]["interval"] == [[jst_iso(T0 + HOUR), jst_iso(T0 + 2 * HOUR)]]
    west, south, east, north = collections["collections"][0]["extent"]["spatial"]["bbox"][0]
    assert 139 < west < east < 141 and 36 < south < north < 38


async def test_items_are_geojson_paged_with_links_and_filtered_by_time_and_bbox(app):
    async with TestClient(TestServer(app)) as client:
        page = await _get(client, "/collections/readings/items?limit=5")
        following = await _get(client, "/collections/readings/items?limit=5&offset=5")
        window = f"{jst_iso(T0 + HOUR)}/{jst_iso(T0 + 2 * HOUR)}".replace("+", "%2B")
        timed = await _get(client, f"/collections/readings/items?datetime={window}&station_id=41277")
        nowhere = await _get(client, "/collections/readings/items?bbox=130,30,131,31")
        await _get(client, "/collections/readings/items?bbox=1,2,3", 400)
        await _get(client, "/collections/readings/items?datetime=yesterday", 400)

    assert page["type"] == "FeatureCollection" and page["numberMatched"] == 12 and page["numberReturned"] == 5
    assert {link["rel"] for link in page["links"]} == {"self", "next"}
    assert {link["rel"] for link in following["links"]} == {"self", "next", "prev"}
    feature = page["features"][0]
    assert feature["geometry"]["type"] == "Point" and feature["properties"]["datetime"] == jst_iso(T0)
    assert [f["properties"]["precipitation_1h"] for f in timed["features"]] == [1.0, None]  # closed interval
    assert timed["features"][1]["properties"]["quality"] == "MISSING"
    assert nowhere["numberReturned"] == 0


async def test_only_public_data_is_served(app, tochigi):
    async with TestClient(TestServer(app)) as client:
        alerts = await _get(client, "/collections/alerts/items")
        stations = await _get(client, "/collections/stations/items?limit=1000")
        one = await _get(client, f"/collections/alerts/items/{alerts['features'][0]['id']}")
        reading = await _get(client, f"/collections/readings/items/41277.{T0}")
        municipality = await _get(client, "/collections/municipalities/items/09201")
        await _get(client, "/collections/alerts/items/nope", 404)

    assert [f["properties"]["sharing_level"] for f in alerts["features"]] == ["PUBLIC", "PUBLIC"]
    assert all("topics" not in f["properties"] for f in alerts["features"])
    public = {s.station_id for s in tochigi.stations.values() if s.is_public}
    assert {f["id"] for f in stations["features"]} == public
    assert one["id"] == alerts["features"][0]["id"] and reading["properties"]["station_id"] == "41277"
    assert municipality["geometry"]["type"] in ("Polygon", "MultiPolygon")


def _ogrinfo() -> str:
    path = shutil.which("ogrinfo")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("ogrinfo is missing: .ci/run installs it from Debian's packages (gdal-bin)")
        pytest.skip("ogrinfo not installed (apt-get install gdal-bin)")
    return path


async def _run(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GDAL_HTTP_TIMEOUT": "20"},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, out.decode() + err.decode()
    return out.decode()


async def test_gdal_lists_the_collections_and_reads_features(app):
    ogrinfo = _ogrinfo()
    async with TestServer(app, host="127.0.0.1") as server:
        url = f"OAPIF:http://127.0.0.1:{server.port}/"
        listed = await _run(ogrinfo, "-ro", url)
        readings = await _run(ogrinfo, "-ro", "-al", url, "readings")
        stations = await _run(ogrinfo, "-ro", "-al", "-q", url, "stations")

    for name in ("stations", "municipalities", "alerts", "readings"):
        assert name in listed
    assert "Feature Count: 12" in readings or readings.count("OGRFeature(readings)") == 12
    assert "POINT (139.86833" in readings and "41277" in readings
    assert "Utsunomiya" in stations
