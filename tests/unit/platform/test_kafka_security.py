"""How the hub's Kafka clients authenticate, from one place (streams/platform/kafka_security.py); no broker."""

from __future__ import annotations

import json
import os
import ssl
import stat

import pytest

from streams.kernel.errors import ConfigError
from streams.platform import hardening, tls
from streams.platform.kafka import security_options, ssl_context_for
from streams.platform.kafka_security import ClientSecurity, client_security, load_client_file, registered

SECRET = "s3cret-never-shown"


@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("BOSAI_KAFKA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOSAI_CACHE_DIR", str(tmp_path / "cache"))
    return monkeypatch


@pytest.fixture()
def ca_file(tmp_path):
    return tls.ensure_ca(tmp_path / "tls").cert_file


def _live_state(tmp_path, pid: int) -> str:
    state = tmp_path / f"state-{pid}.json"
    state.write_text(json.dumps({"nodes": [{"id": 1, "pid": pid}]}))
    return str(state)


def test_without_settings_the_hub_uses_plaintext(clean_env):
    assert client_security("127.0.0.1:9092").protocol == "PLAINTEXT"
    assert security_options("127.0.0.1:9092") == {}


def test_a_client_config_file_gives_scram_over_tls_and_never_shows_the_password(clean_env, tmp_path, ca_file):
    config = tmp_path / "hub.json"
    config.write_text(
        json.dumps({"security_protocol": "SASL_SSL", "username": "hub", "password": SECRET, "ca_file": str(ca_file)})
    )
    clean_env.setenv("BOSAI_KAFKA_CONFIG", str(config))

    options = security_options("kafka-1:9092")

    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "hub" and options["sasl_plain_password"] == SECRET
    assert SECRET not in repr(client_security("kafka-1:9092"))


@pytest.mark.parametrize(
    "document, message",
    [
        ({"security_protocol": "SASL_SSL", "username": "hub", "ca_file": "x"}, "without a user name and password"),
        ({"security_protocol": "SASL_SSL", "username": "hub", "password": SECRET}, "without a CA file"),
        ({"security_protocol": "TLS"}, "security_protocol is 'TLS'"),
        ({"security_protocol": "SASL_SSL", "username": "hub", "password": 7, "ca_file": "x"}, "value not shown"),
        ({"security_protocol": "SSL", "ca_file": "/nonexistent/ca.pem"}, "no such file /nonexistent/ca.pem"),
    ],
)
def test_a_wrong_client_config_names_the_file_and_what_was_expected(tmp_path, document, message):
    config = tmp_path / "hub.json"
    config.write_text(json.dumps(document))

    with pytest.raises(ConfigError) as caught:
        load_client_file(config)

    assert str(config) in str(caught.value) and message in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"security_protocol": "PLAINTEXT"', "not valid JSON"),
        ('{"username": "ハブ"}'.encode("shift_jis"), "not UTF-8"),
    ],
)
def test_a_client_config_that_is_not_json_or_not_utf8_is_a_config_error(tmp_path, content, message):
    # a file that is not UTF-8 raised AttributeError (a UnicodeDecodeError has no .msg), not a ConfigError
    config = tmp_path / "hub.json"
    config.write_bytes(content)

    with pytest.raises(ConfigError) as caught:
        load_client_file(config)

    assert str(config) in str(caught.value) and message in str(caught.value)


def test_the_environment_takes_the_password_from_a_file(clean_env, tmp_path, ca_file):
    password_file = tmp_path / "password"
    password_file.write_text(SECRET + "\n")
    clean_env.setenv("BOSAI_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    clean_env.setenv("BOSAI_KAFKA_SASL_PASSWORD_FILE", str(password_file))
    clean_env.setenv("BOSAI_KAFKA_CA_FILE", str(ca_file))

    security = client_security("anything:9092")

    assert (security.protocol, security.username, security.password) == ("SASL_SSL", "hub", SECRET)
    clean_env.delenv("BOSAI_KAFKA_SASL_PASSWORD_FILE")
    with pytest.raises(ConfigError, match="BOSAI_KAFKA_SASL_PASSWORD_FILE"):
        client_security("anything:9092")


def test_a_hardened_embedded_broker_is_found_by_any_of_its_addresses_while_it_runs(clean_env, tmp_path, ca_file):
    hub = ClientSecurity(protocol="SASL_SSL", username="hub", password=SECRET, ca_file=str(ca_file))
    path = hardening.registry_file(tmp_path / "home", "h", hardening.HUB)
    hardening.register(path, hub, "127.0.0.1:1001,127.0.0.1:1002", tmp_path / "missing")
    running = hardening.registry_file(tmp_path / "home2", "h2", hardening.HUB)
    hardening.register(running, hub, "127.0.0.1:2001,127.0.0.1:2002", _live_state(tmp_path, os.getpid()))

    assert stat.S_IMODE(running.stat().st_mode) == 0o600
    assert registered("127.0.0.1:2002").username == "hub"
    assert client_security("127.0.0.1:2001,127.0.0.1:9").password == SECRET
    assert registered("127.0.0.1:1001") is None, "a broker that no longer runs is not used"
    assert client_security("127.0.0.1:3000").protocol == "PLAINTEXT"


def test_the_admin_certificate_is_a_client_certificate_of_the_local_ca(tmp_path):
    ca = tls.ensure_ca(tmp_path / "tls")
    keystore, admin = hardening.node_certificates(ca, tmp_path / "home", hardened=True)
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def certificate(path):
        return x509.load_pem_x509_certificate(path.read_bytes())

    node, client = certificate(keystore), certificate(admin)
    assert node.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "broker"
    usages = node.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)
    assert client.subject.rfc4514_string() == "CN=admin" and client.issuer == certificate(ca.cert_file).subject
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    context = ssl_context_for(hardening.admin_security(ca.cert_file, admin))  # key and chain from one PEM
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_the_hub_is_granted_its_topics_groups_and_transactional_ids_and_nothing_of_the_cluster():
    from streams.platform.access_file import default_access_path, load_access

    hub = {b for b in load_access(default_access_path()).bindings() if b.principal == "User:hub"}

    def ops(resource: str, name: str) -> set[str]:
        return {b.operation for b in hub if (b.resource_type, b.resource_name) == (resource, name)}

    assert all(b.pattern_type == "prefixed" for b in hub)
    assert ops("topic", "bosai.") == {"read", "write", "describe", "describe_configs"}, "the live topics: admin's"
    assert ops("topic", "replay-") == ops("topic", "demo-") == ops("topic", "bosai.") | {"create", "delete"}
    for namespace in ("bosai-", "replay-", "demo-"):  # <prefix>-<region>-hub, its <group>.<topic>.<partition>
        assert ops("group", namespace) == {"read", "describe"}
        assert ops("transactional_id", namespace) == {"write", "describe"}
    assert not [b for b in hub if b.resource_type == "cluster"], "ACLs and credentials are the admin's"
