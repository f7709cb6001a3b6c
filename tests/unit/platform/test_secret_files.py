"""Files holding secrets are written 0600 by every writer, and refused on load when others may read them;
text from outside is redacted before it reaches a log or an error."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from streams.cli import cli
from streams.delivery.subscriptions import load_subscriptions
from streams.fiware.bridge_file import load_bridge_config
from streams.gateway.server import Doors
from streams.kernel.errors import ConfigError
from streams.kernel.redact import REDACTED, redact, url_origin
from streams.packs.region_pack import load_pack
from streams.platform.access_file import default_access_path, load_access
from streams.platform.secret_files import read_secret, write_secret
from streams.platform.tls import ensure_ca, issue_server_certificate
from streams.security.token_store import TokenStore

SECRET = "whsec-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def tochigi(project_root):
    return load_pack(project_root / "regions" / "tochigi")


def test_a_secret_is_written_0600_and_a_looser_file_already_there_is_replaced_not_reused(tmp_path):
    old = tmp_path / "private" / "client.properties"
    old.parent.mkdir(mode=0o755)
    old.write_text("stale")
    old.chmod(0o644)
    fresh = tmp_path / "new" / "deeper" / "ca.key"

    write_secret(old, "sasl.password=x\n")
    write_secret(fresh, b"-----BEGIN PRIVATE KEY-----\n")

    assert _mode(old) == 0o600 and old.read_text() == "sasl.password=x\n"
    assert _mode(fresh) == 0o600 and _mode(fresh.parent) == 0o700
    assert sorted(p.name for p in old.parent.iterdir()) == ["client.properties"], "no temporary file left"


def test_every_writer_of_the_hub_writes_its_secrets_0600(tmp_path, project_root):
    tokens = TokenStore(tmp_path / "gateway" / "tokens.json")
    tokens.issue("owner:utsunomiya")
    ca = ensure_ca(tmp_path / "tls")
    broker_pem = issue_server_certificate(ca, tmp_path / "tls" / "broker.pem", hostnames=("localhost",), ips=())
    owners = tmp_path / "owners.yaml"
    owners.write_text(
        yaml.safe_dump({"version": 1, "owners": [{"id": "ns", "region": "tochigi", "stations": ["41277"]}]})
    )
    output = tmp_path / "ns.token"
    output.write_text("an old token")
    output.chmod(0o644)

    issued = CliRunner().invoke(
        cli,
        [
            "gateway",
            "token",
            "issue",
            "ns",
            "--owners",
            str(owners),
            "--tokens",
            str(tokens.path),
            "--output",
            str(output),
        ]
        + ["--region", str(project_root / "regions" / "tochigi")],
    )

    assert issued.exit_code == 0, issued.output
    assert {p.name: _mode(p) for p in (tokens.path, ca.key_file, broker_pem, output)} == {
        "tokens.json": 0o600,
        "ca.key": 0o600,
        "broker.pem": 0o600,
        "ns.token": 0o600,
    }
    assert _mode(tokens.path.parent) == 0o700
    assert output.read_text().startswith("bst.") and output.read_text().strip() not in issued.output


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_webhook_secret_file_others_may_read_or_write_is_refused_with_the_fix_and_without_the_secret(
    tmp_path, tochigi, mode
):
    secret_file = tmp_path / "utsunomiya.secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(mode)
    config = tmp_path / "subscriptions.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "subscriptions": [
                    {
                        "id": "utsunomiya",
                        "municipality": "09201",
                        "url": "https://example.jp/hook",
                        "secret_file": str(secret_file),
                    }
                ],
            }
        )
    )

    with pytest.raises(ConfigError) as refused:
        load_subscriptions(config, [tochigi], environ={})

    message = str(refused.value)
    assert str(secret_file) in message and f"{mode:04o}" in message and f"chmod 600 {secret_file}" in message
    assert "subscription utsunomiya" in message
    assert SECRET not in message and SECRET not in repr(refused.value)
    secret_file.chmod(0o600)
    assert load_subscriptions(config, [tochigi], environ={})[0].secret == SECRET


def test_an_orion_credential_file_others_may_read_is_refused(tmp_path, tochigi):
    credential = tmp_path / "keystone.token"
    credential.write_text(SECRET)
    credential.chmod(0o640)
    bridge = tmp_path / "bridge.yaml"
    bridge.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "orions": [
                    {
                        "id": "nasushiobara",
                        "url": "http://orion.example.jp:1026",
                        "service": "nasushiobara",
                        "region": "tochigi",
                        "municipalities": ["09213"],
                        "auth": {"header": "X-Auth-Token", "file": str(credential)},
                    }
                ],
            }
        )
    )

    with pytest.raises(ConfigError, match="group or others .mode 0640.") as refused:
        load_bridge_config(bridge, [tochigi], load_access(default_access_path()), environ={})

    assert SECRET not in str(refused.value)
    credential.chmod(0o400)
    target = load_bridge_config(bridge, [tochigi], load_access(default_access_path()), environ={}).orions[0]
    assert target.auth.value == SECRET and SECRET not in repr(target)


def test_a_token_store_others_may_read_or_write_is_refused_by_the_gateway_at_start(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.issue("owner:utsunomiya")
    store.path.chmod(0o664)

    with pytest.raises(ConfigError, match="token store may be read or written by group or others"):
        Doors(store)
    with pytest.raises(ConfigError):
        store.issue("owner:nasushiobara")


def test_a_ca_key_others_may_read_is_refused(tmp_path):
    ca = ensure_ca(tmp_path / "tls")
    ca.key_file.chmod(0o644)

    with pytest.raises(ConfigError, match="the CA's private key"):
        ensure_ca(tmp_path / "tls")


def test_a_secret_pasted_where_an_environment_variable_name_belongs_is_not_echoed(tmp_path, tochigi):
    config = tmp_path / "subscriptions.yaml"
    pasted = "ab12-Cd34_ef56-gh78"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "subscriptions": [
                    {"id": "utsunomiya", "municipality": "09201", "url": "https://example.jp/h", "secret_env": pasted}
                ],
            }
        )
    )

    with pytest.raises(ConfigError) as refused:
        load_subscriptions(config, [tochigi], environ={})
    with pytest.raises(ConfigError, match="BOSAI_WEBHOOK_SECRET_UTSUNOMIYA"):
        config.write_text(config.read_text().replace(pasted, "BOSAI_WEBHOOK_SECRET_UTSUNOMIYA"))
        load_subscriptions(config, [tochigi], environ={})

    assert pasted not in str(refused.value) and "not shown" in str(refused.value)


def test_an_empty_or_unreadable_secret_file_is_refused_by_name(tmp_path):
    empty = tmp_path / "empty.secret"
    write_secret(empty, "\n")

    with pytest.raises(ConfigError, match="is empty"):
        read_secret(empty, "the webhook secret file")
    with pytest.raises(ConfigError, match="No such file"):
        read_secret(tmp_path / "missing.secret", "the webhook secret file")


@pytest.mark.parametrize(
    "text, secrets, expected",
    [
        (f"HTTP 401: token {SECRET} refused", [SECRET], f"HTTP 401: token {REDACTED} refused"),
        ("Authorization: Bearer bst.0a1b2c.QWxhZGRpbjpvcGVuIHNlc2FtZQ", [], f"Authorization: Bearer {REDACTED}"),
        (
            "echo bst.0a1b2c3d4e5f.Zm9vYmFyYmF6cXV4cXV1eHF1dXg rejected",
            [],
            f"echo bst.0a1b2c3d4e5f.{REDACTED} rejected",
        ),
        ("header Basic bXVuaS0wOTIwMTpzZWNyZXQ=", [], f"header Basic {REDACTED}"),
        (
            "Cannot connect to https://user:pw@hooks.example.jp/x",
            [],
            f"Cannot connect to https://{REDACTED}@hooks.example.jp/x",
        ),
        ("x-auth: d2hzZWMtOWY4ZTdkNmM1YjRhMzkyODE3MDZmNWU0ZDNjMmIxYTA=", [SECRET], f"x-auth: {REDACTED}"),
        ("nothing secret here: HTTP 500", [SECRET], "nothing secret here: HTTP 500"),
    ],
)
def test_text_from_outside_is_redacted_before_it_reaches_a_log(text, secrets, expected):
    assert redact(text, secrets) == expected


def test_a_url_is_logged_as_its_origin_only():
    assert (
        url_origin("https://u:p@hooks.example.jp:8443/services/T0/B0/XYZ?token=abc") == "https://hooks.example.jp:8443"
    )
    assert url_origin("not a url") == "(a URL)"
