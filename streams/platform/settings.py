"""Where things live, and what the environment overrides. Read once per call; no global state."""

from __future__ import annotations

import os
from pathlib import Path

ENV_BOOTSTRAP = "KAFKA_BOOTSTRAP_SERVERS"
ENV_CACHE_DIR = "BOSAI_CACHE_DIR"
ENV_HOME = "BOSAI_HOME"
ENV_REGISTRY = "BOSAI_SCHEMA_REGISTRY_URL"
ENV_CLIENTS_BOOTSTRAP = "BOSAI_CLIENTS_BOOTSTRAP"
ENV_CA_FILE = "BOSAI_CA_FILE"
ENV_TLS_DIR = "BOSAI_TLS_DIR"


def project_root() -> Path:
    """The checkout holding avro/, topics/, regions/, deploy/ (the package is installed editable)."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).resolve()
    return Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """Outside the repo: Maven-resolved broker jars, broker data and logs."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bosai"


def external_bootstrap() -> str | None:
    """The cluster named by KAFKA_BOOTSTRAP_SERVERS, if any: then nothing embedded is started."""
    value = os.environ.get(ENV_BOOTSTRAP, "").strip()
    return value or None


def registry_url() -> str | None:
    value = os.environ.get(ENV_REGISTRY, "").strip()
    return value or None


def tls_dir() -> Path:
    """Outside the repo: the local CA that signs the broker's authenticated listener."""
    if os.environ.get(ENV_TLS_DIR):
        return Path(os.environ[ENV_TLS_DIR]).expanduser().resolve()
    return cache_dir() / "tls"
