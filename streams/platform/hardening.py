"""Hardened mode of the embedded broker: no PLAINTEXT, the hub as ``User:hub``, the admin by certificate.

``bosai broker up --hardened`` (:meth:`streams.platform.broker.EmbeddedBroker.up`) uses this module to

- issue the nodes' certificate (CN=broker, server and client use: the nodes authenticate each other on the
  INTERNAL and CONTROLLER listeners, mTLS) and the admin commands' client certificate (``admin.pem``,
  CN=admin), both signed by the local CA and 0600;
- register two client configs under ``<cache>/kafka-clients/`` (0600), which
  :func:`streams.platform.kafka_security.client_security` finds by address: the admin certificate for the
  INTERNAL listener, the hub's SCRAM credential for the HUB listener — so every process the hub starts
  (workers, replay, feed, sink …) authenticates as ``hub`` without being told;
- create (or, with kept data, re-register) the ``hub`` SCRAM credential and apply ``topics/access.yaml``,
  which grants ``hub`` its topics, consumer groups and transactional ids and nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams.kernel.errors import BosaiError
from streams.platform import tls
from streams.platform.kafka import scram_login, ssl_context_for
from streams.platform.kafka_admin import apply_access, issue_credential_with
from streams.platform.kafka_security import ClientSecurity, addresses, parse_client_document, registry_dir
from streams.platform.secret_files import write_secret

HUB = "hub"
ADMIN = "admin"
NODE_PRINCIPAL = "broker"


def node_certificates(
    ca: tls.CertificateAuthority, home: Path, *, hardened: bool, public_host: str = ""
) -> tuple[Path, Path | None]:
    """The nodes' key + certificate (every listener's: for localhost, 127.0.0.1 and the public host clients
    reach the CLIENTS listener by), and, when hardened, the admin client certificate."""
    hostnames, ips = tls.names_with(("localhost",), ("127.0.0.1",), public_host)
    keystore = tls.issue_server_certificate(
        ca,
        home / "tls" / "broker.pem",
        hostnames=hostnames,
        ips=ips,
        common_name=NODE_PRINCIPAL if hardened else None,
        client_auth=hardened,
    )
    if not hardened:
        return keystore, None
    return keystore, tls.issue_client_certificate(ca, home / "tls" / "admin.pem", common_name=ADMIN)


# -- the registry of client configs --------------------------------------------------------------------


def registry_file(home: Path, name: str, role: str) -> Path:
    """One broker's registered client config for one role (``hub`` or ``admin``)."""
    tag = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:8]
    return registry_dir() / f"{name}-{tag}.{role}.json"


def register(path: Path, security: ClientSecurity, bootstrap: str, state_file: Path) -> Path:
    """Write a client config that clients of ``bootstrap`` will use while the broker runs (0600)."""
    document = security.document(bootstrap, principal=security.principal, broker_state=str(state_file))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_secret(path, (json.dumps(document, indent=2) + "\n").encode())
    return path


def write_client_config(path: Path, security: ClientSecurity, *, previous_document: Path | None = None) -> Path:
    """Write a hub client config (0600); a registered one keeps its bootstrap and broker (so it stays registered)."""
    kept: dict[str, Any] = {}
    if previous_document is not None and previous_document.exists():
        try:
            old = json.loads(previous_document.read_text(encoding="utf-8"))
            kept = {k: old[k] for k in ("bootstrap_servers", "broker_state") if k in old}
        except (OSError, ValueError):
            kept = {}
    document = security.document(principal=security.principal, **kept)
    write_secret(path, (json.dumps(document, indent=2) + "\n").encode())
    return path


def unregister(home: Path, name: str) -> None:
    for role in (HUB, ADMIN):
        registry_file(home, name, role).unlink(missing_ok=True)


def read_registered(path: Path) -> ClientSecurity | None:
    """A registered config as it is on disk (e.g. to keep the hub's password across restarts)."""
    try:
        return parse_client_document(json.loads(path.read_text(encoding="utf-8")), path)
    except (OSError, ValueError, BosaiError):
        return None


def admin_security(ca_file: Path, admin_pem: Path) -> ClientSecurity:
    return ClientSecurity(
        protocol="SSL", ca_file=str(ca_file), cert_file=str(admin_pem), source="the admin certificate"
    )


# -- the hub's credential -------------------------------------------------------------------------------


async def _wait_login(bootstrap: str, security: ClientSecurity, timeout_s: float) -> None:
    """Until the broker accepts the credential (SCRAM credentials reach the listeners through the metadata log)."""
    host, _, port = sorted(addresses(bootstrap))[0].rpartition(":")
    context = ssl_context_for(security)
    deadline = time.monotonic() + timeout_s
    if security.username is None or security.password is None:
        raise BosaiError(f"{security.source}: no SCRAM username and password to log in with")
    while not await scram_login(host, int(port), context, security.username, security.password):
        if time.monotonic() > deadline:
            raise BosaiError(f"the broker at {bootstrap} did not accept the {security.username} credential in time")
        await asyncio.sleep(0.25)


async def ensure_hub_credential(
    admin_bootstrap: str,
    *,
    ca_file: Path,
    previous: ClientSecurity | None = None,
    rotate: bool = False,
    hub_bootstrap: str | None = None,
) -> ClientSecurity:
    """Create the ``hub`` SCRAM credential, or register again the one the hub already holds (``previous``),
    or replace it (``rotate``). Returns the hub's client security (the password in it, never printed)."""
    kept = previous.password if previous is not None and not rotate and previous.username == HUB else None
    password = kept or secrets.token_urlsafe(32)
    await issue_credential_with(admin_bootstrap, HUB, password)
    security = ClientSecurity(
        protocol="SASL_SSL", username=HUB, password=password, ca_file=str(ca_file), source="the hub credential"
    )
    if hub_bootstrap:
        await _wait_login(hub_bootstrap, security, timeout_s=30)
    return security


def secure(
    admin_bootstrap: str,
    hub_bootstrap: str,
    *,
    hub_file: Path,
    ca: tls.CertificateAuthority,
    state_file: Path,
    progress: Callable[[str], None],
) -> None:
    """A fresh ``hub`` credential (every start), registered for the hub listener; topics/access.yaml applied."""
    security = asyncio.run(ensure_hub_credential(admin_bootstrap, ca_file=ca.cert_file, hub_bootstrap=hub_bootstrap))
    register(hub_file, security, hub_bootstrap, state_file)
    added, removed = apply_access_file(admin_bootstrap)
    progress(
        f"hardened: PLAINTEXT off; the hub connects as User:hub ({hub_file}, 0600); "
        f"topics/access.yaml applied ({added} ACL bindings added, {removed} removed)"
    )


def apply_access_file(admin_bootstrap: str) -> tuple[int, int]:
    """Make the cluster's ACLs equal to topics/access.yaml (as `bosai access apply`); (added, removed)."""
    from streams.platform.access_file import default_access_path, load_access

    before, after = asyncio.run(apply_access(admin_bootstrap, load_access(default_access_path())))
    if after.changes:
        raise BosaiError("after applying topics/access.yaml the cluster's ACLs still differ (see `bosai access plan`)")
    return len(before.add), len(before.remove)
