"""Test tiers: tests/unit (pure, no broker) and tests/integration (marked, one real broker per session).

The session broker is the project's own embedded Apache Kafka (streams.platform.broker), started once on free
ports with its data in a temporary folder, and stopped by its pid at the end. When
KAFKA_BOOTSTRAP_SERVERS is set, the integration tests use that cluster instead and start nothing.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The drills' stall times, measured on the three-node cluster: figures, not a pass/fail."""
    harness = sys.modules.get("tests.support.drill_harness")  # only when the drills ran
    if harness is not None and harness.STALLS:
        terminalreporter.section("drills: stall from the fault to the next alert delivered")
        for name, stalls in harness.STALLS.items():
            rounded = ", ".join(f"{s:.1f}" for s in stalls)
            if not stalls:  # a drill that measured nothing (it failed before, or nothing resumed)
                terminalreporter.write_line(f"{name}: no figure")
                continue
            terminalreporter.write_line(f"{name}: max {max(stalls):.1f} s over {len(stalls)} ({rounded})")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/tests/integration/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)
        if "/tests/browser/" in str(item.path).replace(os.sep, "/"):  # they need the broker too
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory) -> str:
    """Bootstrap address of a real Kafka broker for the whole test session."""
    from streams.platform.broker import EmbeddedBroker
    from streams.platform.settings import external_bootstrap

    external = external_bootstrap()
    if external:
        yield external
        return
    root = tmp_path_factory.mktemp("brokers")
    broker = EmbeddedBroker(f"pytest-{os.getpid()}", root=root)
    # Clients reach its CLIENTS listener and registry by a second loopback address, as another machine would
    # by the hub's public name: the issued configs are proven to work from an address that is not 127.0.0.1.
    state = broker.up(progress=lambda m: print(f"[broker] {m}"), public_host=CLIENTS_HOST)
    _SESSION_BROKER["state"] = state
    try:
        yield state.bootstrap
    finally:
        broker.down()


_SESSION_BROKER: dict = {}
CLIENTS_HOST = "127.0.0.2"


@pytest.fixture(scope="session")
def hardened_kafka(tmp_path_factory):
    """A second embedded broker for the session, hardened (`bosai broker up --hardened`): no PLAINTEXT, the
    hub as User:hub with only topics/access.yaml's grants, admin by certificate. Its BrokerState; the hub's
    and the admin's client configs are registered, so the hub's code finds them by address."""
    from streams.platform.broker import EmbeddedBroker
    from streams.platform.settings import external_bootstrap

    if external_bootstrap():
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS names an external cluster: the hardened tests start their own broker")
    broker = EmbeddedBroker(f"pytest-hardened-{os.getpid()}", root=tmp_path_factory.mktemp("hardened"))
    state = broker.up(progress=lambda m: print(f"[hardened broker] {m}"), heap="512m", hardened=True)
    try:
        yield state
    finally:
        broker.down()


@pytest.fixture(scope="session")
def kafka_broker_logs(kafka_bootstrap) -> list[Path] | None:
    """The session broker's own log files (None for an external cluster: its logs are not ours to read)."""
    from streams.platform.kafka_node import KafkaNode

    state = _SESSION_BROKER.get("state")
    if state is None:
        return None
    return [KafkaNode(Path(state.home), node.id).log_file for node in state.nodes]


@pytest.fixture(scope="session")
def kafka_clients_listener(kafka_bootstrap) -> tuple[str, Path]:
    """The session broker's authenticated listener (SASL_SSL, SCRAM-SHA-512) and the CA file to trust it."""
    from streams.platform.settings import ENV_CA_FILE, ENV_CLIENTS_BOOTSTRAP

    state = _SESSION_BROKER.get("state")
    if state is not None:
        return state.clients_bootstrap, Path(state.ca_file)
    if os.environ.get(ENV_CLIENTS_BOOTSTRAP) and os.environ.get(ENV_CA_FILE):
        return os.environ[ENV_CLIENTS_BOOTSTRAP], Path(os.environ[ENV_CA_FILE])
    pytest.skip(f"external cluster without {ENV_CLIENTS_BOOTSTRAP}/{ENV_CA_FILE}: no authenticated listener to test")


@pytest.fixture(scope="session")
def schema_registry_url(kafka_bootstrap) -> str:
    """The schema registry beside the session broker (bosai registry serve), as clients reach it."""
    from streams.platform.settings import registry_url

    state = _SESSION_BROKER.get("state")
    if state is not None:
        return state.registry_url
    if registry_url():
        return registry_url()
    pytest.skip("external cluster without BOSAI_SCHEMA_REGISTRY_URL: no schema registry to test")


@pytest.fixture()
def unique() -> str:
    """A short unique suffix, so tests sharing the session broker never share topics or groups."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def kanagawa_with_river(project_root: Path, tmp_path_factory) -> Path:
    """The Kanagawa pack plus a test-defined river gauge on the Sakai river in Sagamihara 南区."""
    target = tmp_path_factory.mktemp("packs") / "kanagawa"
    shutil.copytree(project_root / "regions" / "kanagawa", target)
    manifest = yaml.safe_load((target / "region.yaml").read_text())
    manifest["files"]["station_settings"] = "stations.yaml"
    (target / "region.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    with open(target / "stations.csv", "a", encoding="utf-8") as handle:
        handle.write("R-14-001,river_level_gauge,境川テスト,Sakai test,35.5436,139.4442,60\n")
    (target / "stations.yaml").write_text(
        yaml.safe_dump(
            {
                "R-14-001": {
                    "river_stages": {"standby_m": 1.0, "caution_m": 2.0, "evacuation_m": 2.6, "danger_m": 3.1},
                    "downstream_municipalities": ["14205", "14207"],
                    "hazard_zones": ["lsld-153-H26-00027-1-1"],
                }
            },
            allow_unicode=True,
        )
    )
    return target
