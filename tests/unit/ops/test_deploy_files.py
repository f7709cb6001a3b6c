"""Operator deploy files: Prometheus config and rules (promtool), generated dashboards, docker-compose."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

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
    assert "SUCCESS: 6 rules found" in result.stdout + result.stderr


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
        assert all("bosai_" in e for e in exprs)
        assert text.count('"uid": "bosai-prometheus"') >= len(exprs)
    assert "uid: bosai-prometheus" in provisioned


def test_docker_compose_file_is_valid_and_has_the_full_stack(project_root):
    result = subprocess.run(
        [
            _tool("docker-compose"),
            "-f",
            "docker-compose.yml",
            "--profile",
            "replay",
            "--profile",
            "sink",
            "--profile",
            "live",
            "config",
            "--services",
        ],
        cwd=project_root,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {
        "tls-init",
        "kafka-1",
        "kafka-2",
        "kafka-3",
        "topics",
        "access",
        "hub-tochigi",
        "hub-tochigi-2",
        "hub-kanagawa",
        "feed",
        "web",
        "sink",
        "prometheus",
        "grafana",
        "replay",
        "jma-watch",
        "amedas-watch",
    }
