"""`bosai gateway token issue|revoke` and `bosai bridge orion subscribe` (against the stand-in; no broker)."""

from __future__ import annotations

import asyncio
import stat
import threading

import pytest
import yaml
from click.testing import CliRunner

from streams.cli import cli
from streams.security.token_store import TokenStore
from streams.security.tokens import token_matches
from tests.support.orion_standin import RIVER_ENTITY, OrionStandIn, make_nasushiobara_pack


@pytest.fixture()
def pack_dir(project_root, tmp_path):
    return make_nasushiobara_pack(project_root / "regions" / "tochigi", tmp_path / "tochigi")


def test_a_token_is_printed_once_kept_hashed_in_a_0600_file_and_revoked(pack_dir, tmp_path):
    owners = tmp_path / "owners.yaml"
    owners.write_text(
        yaml.safe_dump({"version": 1, "owners": [{"id": "ns", "region": "tochigi", "stations": ["R-09-213-01"]}]})
    )
    tokens = tmp_path / "tokens.json"
    common = ["--owners", str(owners), "--tokens", str(tokens), "--region", str(pack_dir)]
    issued = CliRunner().invoke(cli, ["gateway", "token", "issue", "ns", *common])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()
    assert token.startswith("bst.") and token.split(".")[2] not in tokens.read_text()
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert token_matches(token, TokenStore(tokens).load()) == "owner:ns"
    unknown = CliRunner().invoke(cli, ["gateway", "token", "issue", "nobody", *common])
    assert unknown.exit_code != 0 and "no owner 'nobody'" in str(unknown.exception or unknown.output)
    revoked = CliRunner().invoke(cli, ["gateway", "token", "revoke", "ns", "--tokens", str(tokens)])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert token_matches(token, TokenStore(tokens).load()) is None


@pytest.fixture()
def standin():
    """The Orion stand-in on its own loop in a thread (the command runs its own asyncio loop)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    orion = OrionStandIn()
    asyncio.run_coroutine_threadsafe(orion.start(), loop).result(10)
    yield orion
    asyncio.run_coroutine_threadsafe(orion.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_subscribe_creates_one_subscription_of_the_sensors_path_with_a_token_and_changes_nothing_when_run_again(
    pack_dir, standin, tmp_path
):
    bridge = tmp_path / "bridge.yaml"
    entry = {
        "id": "nasushiobara",
        "url": standin.url,
        "service": "nasushiobara",
        "sensor_service_path": "/sensors",
        "region": "tochigi",
        "municipalities": ["那須塩原市"],
        "notify_url": "https://hub.example.jp/v1/orion/nasushiobara/notifications",
    }
    bridge.write_text(yaml.safe_dump({"version": 1, "orions": [entry]}, allow_unicode=True))
    tokens = tmp_path / "tokens.json"
    args = ["bridge", "orion", "subscribe", "--config", str(bridge), "--region", str(pack_dir), "--tokens", str(tokens)]
    first = CliRunner().invoke(cli, args)
    second = CliRunner().invoke(cli, args)
    rotated = CliRunner().invoke(cli, [*args, "--rotate"])
    assert first.exit_code == second.exit_code == rotated.exit_code == 0, first.output + second.output
    assert "created" in first.stdout and "unchanged" in second.stdout and "updated" in rotated.stdout
    [sub] = standin.subscriptions.values()
    assert (sub["service"], sub["path"]) == ("nasushiobara", "/sensors")
    assert {e["id"] for e in sub["body"]["subject"]["entities"]} >= {RIVER_ENTITY}
    header = sub["body"]["notification"]["httpCustom"]["headers"]["Authorization"]
    assert token_matches(header.removeprefix("Bearer "), TokenStore(tokens).load()) == "orion:nasushiobara"
    assert sub["body"]["notification"]["httpCustom"]["url"] == entry["notify_url"]
