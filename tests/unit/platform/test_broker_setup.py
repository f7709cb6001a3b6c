"""Embedded-broker set-up errors an operator sees before any JVM starts."""

from __future__ import annotations

import pytest

from streams.platform.broker import EmbeddedBroker, resolve_bootstrap
from streams.platform.kafka_dist import BrokerError, MissingToolError, kafka_version
from streams.platform.kafka_node import new_cluster_id as _new_cluster_id


def test_the_pom_pins_a_kafka_4_release(project_root):
    version = kafka_version(project_root / "deploy/kafka/pom.xml")

    assert version.split(".")[0] == "4"


def test_missing_java_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    monkeypatch.setenv("BOSAI_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)

    with pytest.raises(MissingToolError) as caught:
        EmbeddedBroker("nojava").up()

    assert "java not found on PATH" in str(caught.value) and "openjdk-17" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_maven_says_what_to_install(monkeypatch, tmp_path):
    import shutil

    java = shutil.which("java")
    if java is None:
        pytest.skip("this machine has no java, so the maven check is never reached")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(java)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("BOSAI_CACHE_DIR", str(tmp_path / "cache"))

    with pytest.raises(MissingToolError, match="mvn not found on PATH.*apt-get install maven"):
        EmbeddedBroker("nomaven").up()


def test_without_a_broker_commands_say_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setenv("BOSAI_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)

    with pytest.raises(BrokerError, match="run `bosai broker up`"):
        resolve_bootstrap()


def test_external_bootstrap_wins(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")

    assert resolve_bootstrap() == "kafka-1:9092,kafka-2:9092"


def test_broken_pom_is_named(tmp_path):
    pom = tmp_path / "pom.xml"
    pom.write_text("<project xmlns='http://maven.apache.org/POM/4.0.0'><properties/></project>")

    with pytest.raises(BrokerError, match="pom.xml: no <properties><kafka.version>"):
        kafka_version(pom)


def test_cluster_ids_never_start_with_a_dash_which_the_storage_tool_would_read_as_an_option():
    ids = [_new_cluster_id() for _ in range(3000)]  # ~1 in 64 random UUIDs would start with '-'
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
