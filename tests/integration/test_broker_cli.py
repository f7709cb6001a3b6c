"""`bosai broker up|status|down` as an operator runs them: a second real JVM, stopped by its pid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from streams.platform.broker import pid_alive


def _bosai(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True, env=env, timeout=180
    )


@pytest.fixture()
def cli_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    # Jars stay in the shared cache; broker homes go to a temporary folder.
    env["BOSAI_CACHE_DIR"] = str(tmp_path)
    from streams.platform.kafka_dist import kafka_version
    from streams.platform.settings import cache_dir

    shared_libs = cache_dir() / f"kafka-{kafka_version()}"
    if shared_libs.exists():
        os.symlink(shared_libs, tmp_path / shared_libs.name)
    return env


def test_broker_up_status_down_leaves_no_jvm_and_removes_data(cli_env, tmp_path):
    up = _bosai("broker", "up", "--name", "clitest", "--heap", "512m", env=cli_env)
    assert up.returncode == 0, up.stderr
    pid = int(up.stdout.split("pid ")[1].split()[0])
    registry_url, registry_pid = up.stdout.split("(read-only, Confluent API): ")[1].split()[:3:2]
    registry_pid = int(registry_pid.rstrip(")"))
    try:
        status = _bosai("broker", "status", "--name", "clitest", env=cli_env)
        again = _bosai("broker", "up", "--name", "clitest", env=cli_env)
        subjects = json.loads(urllib.request.urlopen(f"{registry_url}/subjects", timeout=10).read())
    finally:
        down = _bosai("broker", "down", "--name", "clitest", env=cli_env)

    assert "jp.bosai.hub.Alert" in subjects and "bosai.tochigi.alerts.09201-value" in subjects
    assert not pid_alive(registry_pid), "broker down stops the schema registry it started, by its pid"
    assert status.returncode == 0 and "up, bootstrap 127.0.0.1:" in status.stdout
    assert "already running" in again.stderr
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not pid_alive(pid)  # gone, or a zombie waiting for init to reap it
    assert not (tmp_path / "brokers" / "clitest" / "node-1" / "data").exists()
    after = _bosai("broker", "status", "--name", "clitest", env=cli_env)
    assert after.returncode == 1 and "not running" in after.stdout


def test_external_cluster_is_used_and_nothing_is_started(kafka_bootstrap, cli_env):
    env = dict(cli_env, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)

    up = _bosai("broker", "up", env=env)
    status = _bosai("broker", "status", env=env)

    assert up.returncode == 0 and f"using KAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap}" in up.stdout
    assert status.returncode == 0 and "up, 1 broker(s)" in status.stdout
    assert not (os.path.exists(os.path.join(env["BOSAI_CACHE_DIR"], "brokers", "default")))
