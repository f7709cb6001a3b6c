"""The bridge file, a pack's Orion table, the gateway's owners and token store: validated on load (no broker)."""

from __future__ import annotations

import json
import shutil
import stat

import pytest
import yaml

from streams.fiware.bridge_file import load_bridge_config
from streams.fiware.orion_table import load_orion_table
from streams.gateway.owners import load_owners
from streams.kernel.errors import ConfigError
from streams.packs.region_pack import load_pack
from streams.platform.access_file import generate, load_access, render
from streams.platform.topic_catalog import default_catalog_path, load_catalog
from streams.security.token_store import TokenStore
from streams.security.tokens import token_matches

ORION = {
    "id": "nasushiobara",
    "url": "https://orion.nasushiobara.example.jp/",
    "service": "nasushiobara",
    "sensor_service_path": "/sensors",
    "region": "tochigi",
    "municipalities": ["那須塩原市"],
    "readings": "own_stations",
    "auth": {"header": "X-Auth-Token", "env": "NS_ORION_TOKEN"},
    "notify_url": "https://hub.example.jp/v1/orion/nasushiobara/notifications",
}


@pytest.fixture(scope="module")
def tochigi(project_root):
    return load_pack(project_root / "regions" / "tochigi")


@pytest.fixture(scope="module")
def policy(tochigi, tmp_path_factory):
    path = tmp_path_factory.mktemp("access") / "access.yaml"
    path.write_text(render(generate([tochigi], load_catalog(default_catalog_path()))), encoding="utf-8")
    return load_access(path)


def bridge_file(tmp_path, *orions, **top):
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "orions": list(orions), **top}, allow_unicode=True))
    return path


def test_a_valid_bridge_file_resolves_municipalities_to_their_principals_and_the_auth_from_the_environment(
    tmp_path, tochigi, policy
):
    config = load_bridge_config(bridge_file(tmp_path, ORION), [tochigi], policy, environ={"NS_ORION_TOKEN": "t0k3n"})
    [target] = config.orions
    assert (target.url, target.service_path, target.sensor_service_path) == (
        "https://orion.nasushiobara.example.jp",
        "/bosai",
        "/sensors",
    )
    assert [p.name for p in target.principals] == ["muni-09213"] and target.codes == {"09213"}
    assert (target.auth.header, target.auth.value) == ("X-Auth-Token", "t0k3n")
    assert "t0k3n" not in repr(target)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"auth": {"header": "X-Auth-Token", "value": "inline"}}, r"orion nasushiobara.*secrets do not belong"),
        ({"auth": {"header": "X-Auth-Token", "env": "MISSING"}}, r"MISSING is not set"),
        ({"municipalities": ["宇都宮区"]}, r"'宇都宮区' has no principal"),
        ({"service": "Nasu Shiobara"}, r"service is 'Nasu Shiobara'.*Fiware-Service"),
        ({"sensor_service_path": "/bosai"}, r"overlaps service_path /bosai"),
        ({"readings": "all"}, r"readings: all for a municipality"),
        ({"region": "osaka"}, r"region is 'osaka'"),
        ({"url": "ftp://x"}, r"url is 'ftp://x'"),
    ],
)
def test_every_mistake_in_the_bridge_file_names_the_file_the_orion_the_key_and_what_was_expected(
    tmp_path, tochigi, policy, change, message
):
    path = bridge_file(tmp_path, {**ORION, **change})
    with pytest.raises(ConfigError, match=message) as error:
        load_bridge_config(path, [tochigi], policy, environ={"NS_ORION_TOKEN": "x"})
    assert str(path) in str(error.value) and "expected" in str(error.value)


def test_a_prefectures_orion_reads_everything_of_its_region(tmp_path, tochigi, policy):
    pref = {
        "id": "tochigi-pref",
        "url": "http://orion:1026",
        "service": "tochigi",
        "region": "tochigi",
        "prefecture": True,
    }
    [target] = load_bridge_config(bridge_file(tmp_path, pref), [tochigi], policy, environ={}).orions
    assert [p.name for p in target.principals] == ["pref-tochigi"] and target.readings == "all"


@pytest.fixture()
def pack_with_table(tochigi, tmp_path):
    pack_dir = tmp_path / "tochigi"
    shutil.copytree(tochigi.path, pack_dir)
    manifest = yaml.safe_load((pack_dir / "region.yaml").read_text())
    manifest["files"]["orion_entities"] = "orion_entities.csv"
    (pack_dir / "region.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    return pack_dir


def test_the_orion_table_maps_entities_to_stations_with_defaults_by_kind(pack_with_table):
    (pack_with_table / "orion_entities.csv").write_text(
        "orion,entity_id,station_id,attribute,quantity\nnasushiobara,urn:ngsi-ld:WeatherObserved:ns-rain-1,41091,,\n"
        "nasushiobara,rain-2,41076,rainfall,precipitation_24h\n"
    )
    table = load_orion_table(load_pack(pack_with_table), {"nasushiobara"})
    first = table[("nasushiobara", "urn:ngsi-ld:WeatherObserved:ns-rain-1")]
    assert (first.station_id, first.attribute, first.quantity, first.entity_type) == (
        "41091",
        "precipitation",
        "precipitation_1h",
        "WeatherObserved",
    )
    assert table[("nasushiobara", "rain-2")].quantity == "precipitation_24h"


def test_a_bad_orion_table_row_names_the_file_the_row_and_what_was_expected(pack_with_table):
    (pack_with_table / "orion_entities.csv").write_text(
        "orion,entity_id,station_id,attribute,quantity\nnasushiobara,bad id,41091,,\nother,x,41091,,\n"
        "nasushiobara,y,99999,,\nnasushiobara,z,41091,,water_level\n"
    )
    with pytest.raises(ConfigError) as error:
        load_orion_table(load_pack(pack_with_table), {"nasushiobara"})
    text = str(error.value)
    assert "4 problems" in text and "orion_entities.csv [row 2 entity_id='bad id']" in text
    assert (
        "an Orion of the bridge file" in text and "station '99999' is not in tochigi" in text and "water_level" in text
    )


def test_owners_may_hold_only_stations_of_their_pack_and_each_station_has_one_owner(tmp_path, tochigi):
    path = tmp_path / "owners.yaml"
    path.write_text(
        yaml.safe_dump({"version": 1, "owners": [{"id": "ns", "region": "tochigi", "stations": ["41091"]}]})
    )
    owners = load_owners(path, [tochigi])
    assert owners["ns"].stations == {"41091"} and owners["ns"].rate_per_s == 50
    path.write_text(
        yaml.safe_dump({"version": 1, "owners": [{"id": "ns", "region": "tochigi", "stations": ["99999"]}]})
    )
    with pytest.raises(ConfigError, match=r"owner ns.*99999.*not in the tochigi pack"):
        load_owners(path, [tochigi])
    two = [
        {"id": "a", "region": "tochigi", "stations": ["41091"]},
        {"id": "b", "region": "tochigi", "stations": ["41091"]},
    ]
    path.write_text(yaml.safe_dump({"version": 1, "owners": two}))
    with pytest.raises(ConfigError, match="also a's"):
        load_owners(path, [tochigi])


def test_tokens_are_shown_once_stored_hashed_in_a_0600_file_rotated_by_issuing_and_gone_when_revoked(tmp_path):
    store = TokenStore(tmp_path / "gateway" / "tokens.json")
    first = store.issue("owner:ns")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    text = store.path.read_text()
    assert first.split(".")[2] not in text and "owner:ns" in text
    assert token_matches(first, store.load()) == "owner:ns"
    second = store.issue("owner:ns")
    assert token_matches(first, store.load()) is None and token_matches(second, store.load()) == "owner:ns"
    other = store.issue("orion:nasushiobara")
    assert store.revoke("owner:ns") and not store.revoke("owner:ns")
    assert token_matches(second, store.load()) is None and store.holds("orion:nasushiobara", other)
    assert set(json.loads(store.path.read_text())["tokens"].values().__iter__().__next__()) == {
        "subject",
        "sha256",
        "issued_at",
    }


def test_the_example_files_in_deploy_are_valid(project_root, tochigi, policy):
    config = load_bridge_config(
        project_root / "deploy" / "orion-bridge.example.yaml",
        [tochigi],
        policy,
        environ={"BOSAI_ORION_TOKEN_NASUSHIOBARA": "x"},
    )
    assert [t.id for t in config.orions] == ["nasushiobara", "tochigi-pref"]
    assert config.orion("tochigi-pref").readings == "all" and config.orion("nasushiobara").service_path == "/bosai"
    owners = load_owners(project_root / "deploy" / "gateway-owners.example.yaml", [tochigi])
    assert owners["utsunomiya-kikikanri"].rate_per_s == 20
