"""How the hub's own Kafka clients authenticate: one answer, from the environment or a client config file.

:mod:`streams.platform.kafka` asks :func:`client_security` for every client it builds. First match wins:

1. ``BOSAI_KAFKA_CONFIG=FILE``: a hub client config (JSON), as ``bosai broker up --hardened`` and
   ``bosai access apply --hub-config FILE`` write it (mode 0600), or ``bosai access issue hub --format json``.
2. ``BOSAI_KAFKA_SECURITY_PROTOCOL`` (``PLAINTEXT``, ``SSL``, ``SASL_SSL``) with ``BOSAI_KAFKA_SASL_USERNAME``
   (default ``hub``), ``BOSAI_KAFKA_SASL_PASSWORD_FILE``, ``BOSAI_KAFKA_CA_FILE`` and, for a client
   certificate (mTLS), ``BOSAI_KAFKA_CERT_FILE`` (PEM: key and certificate chain). The password is read from
   a file only, never from the environment itself.
3. An embedded broker started with ``--hardened`` whose listener the client connects to: its client configs
   are registered under ``<cache>/kafka-clients/`` (the hub's SCRAM credential for the hub listener, the
   admin certificate for the admin listener), found by the bootstrap addresses.
4. Otherwise ``PLAINTEXT``: the embedded default's loopback listener, where whoever connects is the hub.

The password is never part of a message, a ``repr`` or an exception.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from streams.kernel.errors import ConfigError
from streams.platform.checks import Entry
from streams.platform.settings import cache_dir

ENV_CONFIG = "BOSAI_KAFKA_CONFIG"
ENV_PROTOCOL = "BOSAI_KAFKA_SECURITY_PROTOCOL"
ENV_USERNAME = "BOSAI_KAFKA_SASL_USERNAME"
ENV_PASSWORD_FILE = "BOSAI_KAFKA_SASL_PASSWORD_FILE"
ENV_KAFKA_CA_FILE = "BOSAI_KAFKA_CA_FILE"
ENV_CERT_FILE = "BOSAI_KAFKA_CERT_FILE"

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512",)


@dataclass(frozen=True)
class ClientSecurity:
    """How to connect: protocol, SCRAM user and password, the CA to trust, a client certificate."""

    protocol: str = "PLAINTEXT"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    mechanism: str = "SCRAM-SHA-512"
    ca_file: str | None = None
    cert_file: str | None = None  # PEM with the private key and the certificate chain (mTLS)
    source: str = "default (PLAINTEXT)"  # where this came from, for messages

    @property
    def principal(self) -> str:
        """Who the broker will see (for messages): the SCRAM user, the certificate, or nobody."""
        if self.protocol == "SASL_SSL":
            return f"User:{self.username}"
        if self.cert_file:
            return f"the certificate {self.cert_file}"
        return "User:ANONYMOUS"

    def document(self, bootstrap: str | None = None, **extra: object) -> dict[str, object]:
        """The JSON form of a client config file (what :func:`load_client_file` reads)."""
        doc: dict[str, object] = {"security_protocol": self.protocol}
        if self.protocol == "SASL_SSL":
            doc.update(sasl_mechanism=self.mechanism, username=self.username, password=self.password)
        if self.ca_file:
            doc["ca_file"] = self.ca_file
        if self.cert_file:
            doc["cert_file"] = self.cert_file
        if bootstrap:
            doc["bootstrap_servers"] = bootstrap
        return {**doc, **extra}


PLAINTEXT = ClientSecurity()


def _validated(security: ClientSecurity, file: str, where: str | None) -> ClientSecurity:
    def error(problem: str, expected: str) -> ConfigError:
        return ConfigError(file, problem, where=where, expected=expected)

    if security.protocol == "SASL_SSL" and (not security.username or not security.password):
        raise error("SASL_SSL without a user name and password", "username and password (a SCRAM credential)")
    if security.protocol in ("SSL", "SASL_SSL") and not security.ca_file:
        raise error(f"{security.protocol} without a CA file", "ca_file: the PEM of the CA that signed the broker")
    for path in (security.ca_file, security.cert_file):
        if path and not Path(path).is_file():
            raise error(f"no such file {path}", "a readable PEM file")
    return security


def parse_client_document(raw: object, file: Path | str) -> ClientSecurity:
    """A client config document (JSON) as a ClientSecurity; errors name the file and key, never the password."""
    entry = Entry(raw, file, expected="a JSON object with security_protocol")
    protocol = entry.choice("security_protocol", PROTOCOLS)
    password = entry.get("password")
    if password is not None and (not isinstance(password, str) or not password):
        raise entry.error("password is not a non-empty string (value not shown)", "the SCRAM password")
    security = ClientSecurity(
        protocol=protocol,
        username=entry.text("username", expected="the SCRAM user name", default=None),
        password=password,
        mechanism=entry.choice("sasl_mechanism", MECHANISMS, default="SCRAM-SHA-512"),
        ca_file=entry.text("ca_file", expected="the path of the CA's PEM", default=None),
        cert_file=entry.text("cert_file", expected="the path of a PEM with key and certificate", default=None),
        source=str(file),
    )
    return _validated(security, str(file), None)


def load_client_file(path: Path) -> ClientSecurity:
    """Read a hub client config file (JSON)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, f"cannot read the Kafka client config: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(path, f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    return parse_client_document(raw, path)


def _from_environment() -> ClientSecurity:
    protocol = os.environ[ENV_PROTOCOL].strip().upper()
    where = "environment"
    if protocol not in PROTOCOLS:
        raise ConfigError(ENV_PROTOCOL, f"is {protocol!r}", where=where, expected=" | ".join(PROTOCOLS))
    password = None
    if protocol == "SASL_SSL":
        password_file = os.environ.get(ENV_PASSWORD_FILE, "").strip()
        if not password_file:
            raise ConfigError(ENV_PASSWORD_FILE, "is not set", where=where, expected="the file holding the password")
        try:
            password = Path(password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(password_file, f"cannot read the password file: {exc.strerror}") from exc
    security = ClientSecurity(
        protocol=protocol,
        username=os.environ.get(ENV_USERNAME, "").strip() or "hub",
        password=password,
        ca_file=os.environ.get(ENV_KAFKA_CA_FILE, "").strip() or None,
        cert_file=os.environ.get(ENV_CERT_FILE, "").strip() or None,
        source=f"{ENV_PROTOCOL} and the BOSAI_KAFKA_* environment",
    )
    return _validated(security, ENV_PROTOCOL, where)


# -- the embedded hardened broker's registered client configs ------------------------------------------


def registry_dir() -> Path:
    """Where ``bosai broker up --hardened`` registers its client configs (0600 files)."""
    return cache_dir() / "kafka-clients"


def addresses(bootstrap: str) -> frozenset[str]:
    return frozenset(a.strip() for a in bootstrap.split(",") if a.strip())


def _broker_alive(state_file: str | None) -> bool:
    """Whether the broker that registered a config still runs (any of its nodes' pids is alive)."""
    if state_file is None:
        return False
    try:
        nodes = json.loads(Path(state_file).read_text())["nodes"]
    except (OSError, ValueError, TypeError, KeyError):
        return False
    for node in nodes:
        try:
            os.kill(int(node["pid"]), 0)
        except (ProcessLookupError, ValueError, KeyError, TypeError):
            continue
        except PermissionError:
            return True
        return True
    return False


def registered(bootstrap: str, files: Iterable[Path] | None = None) -> ClientSecurity | None:
    """The client config a running hardened embedded broker registered for one of these addresses."""
    wanted = addresses(bootstrap)
    for path in sorted(files if files is not None else registry_dir().glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(raw, dict) or not wanted & addresses(str(raw.get("bootstrap_servers", ""))):
            continue
        if _broker_alive(raw.get("broker_state")):
            return parse_client_document(raw, path)
    return None


def client_security(bootstrap: str) -> ClientSecurity:
    """How a hub client connecting to ``bootstrap`` authenticates (see the module's docstring)."""
    if os.environ.get(ENV_CONFIG, "").strip():
        return load_client_file(Path(os.environ[ENV_CONFIG].strip()))
    if os.environ.get(ENV_PROTOCOL, "").strip():
        return _from_environment()
    return registered(bootstrap) or PLAINTEXT
