"""Operator deploy files: Prometheus config and rules (promtool), generated dashboards, docker-compose."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from streams.ops.grafana import dashboards_dir, queries, render


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: .ci/run installs it from Debian's packages")
        pytest.skip(f"{name} not installed (apt-get install {'prometheus' if name == 'promtool' else name})")
    return path


def test_prometheus_config_is_valid(project_root):
    result = subprocess.run(
        [_tool("promtool"), "check", "config", "prometheus.yml"],
        cwd=project_root / "deploy/prometheus",
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 22 rules found" in result.stdout + result.stderr


def test_operator_alert_rules_pass_their_promtool_unit_tests(project_root):
    result = subprocess.run(
        [_tool("promtool"), "test", "rules", "rules_test.yml"],
        cwd=project_root / "deploy/prometheus",
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_committed_dashboards_are_what_the_generator_makes():
    for name, text in render().items():
        assert (dashboards_dir() / name).read_text(encoding="utf-8") == text, f"run `bosai dashboards` ({name})"


def test_dashboards_query_only_the_hubs_metrics_through_the_provisioned_datasource(project_root):
    provisioned = (project_root / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    for text in render().values():
        exprs = queries(text)
        assert exprs
        assert all(any(m in e for m in ("bosai_", "kafka_", 'job=~"bosai-')) for e in exprs)
        assert text.count('"uid": "bosai-prometheus"') >= len(exprs)
    assert "uid: bosai-prometheus" in provisioned


PROFILES = ["live", "sink", "orion", "gateway", "history", "registry", "replay"]
# Every long-running bosai command (its first words) and the compose service that runs it.
LONG_RUNNING = {
    ("worker",): {"hub-tochigi", "hub-tochigi-2", "hub-kanagawa"},
    ("jma", "watch"): {"jma-watch"},
    ("amedas", "watch"): {"amedas-watch"},
    ("feed",): {"feed"},
    ("web",): {"web"},
    ("sink", "run"): {"sink"},
    ("bridge", "orion"): {"orion-bridge"},
    ("gateway",): {"gateway"},
    ("archive",): {"archive"},
    ("history", "serve"): {"history"},
    ("registry", "serve"): {"registry"},
}


@pytest.fixture(scope="module")
def compose(project_root):
    profiles = [arg for p in PROFILES for arg in ("--profile", p)]
    result = subprocess.run(
        [_tool("docker-compose"), "-f", "docker-compose.yml", *profiles, "config"],
        cwd=project_root,
        capture_output=True,
        text=True,
        env={**os.environ, "BOSAI_PUBLIC_HOST": "hub.example.lg.jp"},
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def test_docker_compose_refuses_to_start_without_the_public_host_municipalities_reach(project_root):
    env = {k: v for k, v in os.environ.items() if k != "BOSAI_PUBLIC_HOST"}
    result = subprocess.run(
        [_tool("docker-compose"), "-f", "docker-compose.yml", "config"],
        cwd=project_root,
        capture_output=True,
        text=True,
        env=env,
    )

    assert result.returncode != 0 and "set BOSAI_PUBLIC_HOST" in result.stderr


def test_docker_compose_runs_every_long_running_process_as_a_service(compose):
    hub = {n: s for n, s in compose.items() if s.get("image") == "bosai-hub:latest"}
    running = {n for n, s in hub.items() if s["labels"]["jp.bosai.role"] == "service"}
    found: dict[tuple, set] = {}
    for name in running:
        command = hub[name]["command"]
        key = next(k for k in LONG_RUNNING if tuple(command[: len(k)]) == k)
        found.setdefault(key, set()).add(name)
    assert found == LONG_RUNNING
    assert {n for n, s in hub.items() if s["labels"]["jp.bosai.role"] == "one-shot"} == {
        "tls-init",
        "jmx-agent",
        "topics",
        "access",
        "replay",
    }
    assert {"kafka-1", "kafka-2", "kafka-3", "prometheus", "grafana"} <= set(compose)


def test_every_hub_service_is_hardened_limited_restarted_and_health_checked(compose):
    for name, service in compose.items():
        role = service["labels"]["jp.bosai.role"]
        assert service.get("mem_limit") or role == "one-shot", name
        if service.get("image") != "bosai-hub:latest":
            assert service["restart"] == "unless-stopped" and service["healthcheck"]["test"], name
            continue
        assert service["user"] == "1000:1000" and service["read_only"] is True, name
        assert service["tmpfs"] == ["/tmp"] and service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        if role == "service":
            assert service["restart"] == "unless-stopped", name
            assert service["healthcheck"]["test"] == ["CMD", "bosai", "probe", "--ready"], name
            assert service["cpus"] and service["pids_limit"], name
        else:
            assert service["restart"] == "no" and service["healthcheck"]["test"] == ["NONE"], name


def test_prometheus_scrapes_every_long_running_process_and_the_brokers(compose, project_root):
    config = yaml.safe_load((project_root / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    running = {n for n, s in compose.items() if s["labels"]["jp.bosai.role"] == "service"}
    hub = {n for n in running if compose[n].get("image") == "bosai-hub:latest"}
    assert targets == {f"{n}:9464" for n in hub} | {f"kafka-{i}:9404" for i in (1, 2, 3)}
    for node in ("kafka-1", "kafka-2", "kafka-3"):
        assert "-javaagent:/opt/jmx/jmx_prometheus_javaagent.jar=9404:" in compose[node]["environment"]["KAFKA_OPTS"]


def test_grafana_has_no_anonymous_access_and_its_password_comes_from_a_secret_file(compose, project_root):
    grafana = compose["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana
    assert grafana["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    compose_text = (project_root / "docker-compose.yml").read_text()
    assert "./secrets/grafana-admin-password" in compose_text
    assert "secrets/" in (project_root / ".gitignore").read_text().splitlines()
