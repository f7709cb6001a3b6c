"""`bosai access apply|plan|issue|revoke` as an operator runs them, against the session broker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from streams.delivery.feed_server import CredentialChecker
from streams.platform.settings import ENV_BOOTSTRAP, ENV_CA_FILE, ENV_CLIENTS_BOOTSTRAP


def _bosai(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


async def _connects(config: dict, tmp_path: Path) -> bool:
    """A SCRAM handshake over TLS with the issued config (what the feed server does for each login)."""
    kafka = config["kafka"]
    (tmp_path / "issued-ca.pem").write_text(kafka["ssl.ca.pem"])
    checker = CredentialChecker(kafka["bootstrap.servers"], tmp_path / "issued-ca.pem", cache_s=0)
    return await checker.check(kafka["sasl.username"], kafka["sasl.password"])


def test_apply_then_plan_shows_no_changes_and_an_issued_credential_works_until_revoked(
    kafka_bootstrap, kafka_clients_listener, tmp_path
):
    clients, ca_file = kafka_clients_listener
    env = dict(
        os.environ, **{ENV_BOOTSTRAP: kafka_bootstrap, ENV_CLIENTS_BOOTSTRAP: clients, ENV_CA_FILE: str(ca_file)}
    )
    applied = _bosai("access", "apply", env=env)
    assert applied.returncode == 0, applied.stderr
    assert "applied:" in applied.stdout
    planned = _bosai("access", "plan", env=env)
    assert planned.returncode == 0 and "no changes" in planned.stdout, planned.stdout + planned.stderr

    issued = _bosai("access", "issue", "宇都宮市", "--format", "json", env=env)
    assert issued.returncode == 0, issued.stderr
    config = json.loads(issued.stdout)
    assert config["principal"] == "muni-09201" and config["topics"] == ["bosai.tochigi.alerts.09201"]
    assert config["kafka"]["sasl.password"] not in issued.stderr, "printed once, to stdout, never to the log"
    assert asyncio.run(_connects(config, tmp_path))

    revoked = _bosai("access", "revoke", "muni-09201", env=env)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert not asyncio.run(_connects(config, tmp_path))


def _librdkafka_config(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def test_a_librdkafka_client_reads_its_topic_with_the_issued_config_and_nothing_else(
    kafka_bootstrap, kafka_clients_listener, tmp_path
):
    from confluent_kafka import Consumer, Producer

    clients, ca_file = kafka_clients_listener
    env = dict(
        os.environ, **{ENV_BOOTSTRAP: kafka_bootstrap, ENV_CLIENTS_BOOTSTRAP: clients, ENV_CA_FILE: str(ca_file)}
    )
    for args in (("topics", "apply"), ("access", "apply")):
        done = _bosai(*args, env=env)
        assert done.returncode == 0, done.stderr
    hub = Producer({"bootstrap.servers": kafka_bootstrap})
    hub.produce("bosai.tochigi.alerts.09201", key=b"a-1", value=b"for utsunomiya")
    hub.produce("bosai.tochigi.alerts.09202", key=b"a-2", value=b"for ashikaga")
    hub.flush(10)
    issued = _bosai(
        "access", "issue", "宇都宮市", "--format", "librdkafka", "--output", str(tmp_path / "c.conf"), env=env
    )
    assert issued.returncode == 0, issued.stderr
    config = _librdkafka_config(tmp_path / "c.conf")
    assert oct((tmp_path / "c.conf").stat().st_mode & 0o777) == "0o600"
    assert config["ssl.ca.location"] == "c.ca.pem" and (tmp_path / "c.ca.pem").read_text() == ca_file.read_text()
    config["ssl.ca.location"] = str(tmp_path / "c.ca.pem")  # as kcat -F run in the folder of both files

    own = Consumer({**config, "auto.offset.reset": "earliest"})
    own.subscribe(["bosai.tochigi.alerts.09201"])
    values = []  # other tests of the session write to this topic too: read until this test's record
    for _ in range(60):
        message = own.poll(1.0)
        if message is not None and message.error() is None:
            values.append(message.value())
            if message.value() == b"for utsunomiya":
                break
    own.close()
    other = Consumer({**config, "auto.offset.reset": "earliest"})
    other.subscribe(["bosai.tochigi.alerts.09202"])
    refused = None
    for _ in range(30):
        message = other.poll(1.0)
        if message is not None and message.error() is not None:
            refused = message.error()
            break
        assert message is None, "a municipality read another municipality's alerts"
    other.close()

    assert values and values[-1] == b"for utsunomiya"
    assert refused is not None and "authoriz" in refused.str().lower(), refused
