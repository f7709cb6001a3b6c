"""What `bosai access issue` puts in a client config, as another machine sees the hub, and where it writes it."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from streams.cli.common import say
from streams.kernel.access import Principal
from streams.kernel.errors import BosaiError

ENV_CLIENTS_REGISTRY = "BOSAI_CLIENTS_SCHEMA_REGISTRY_URL"


@dataclass(frozen=True)
class ClientsView:
    """The hub as a municipality's machine reaches it."""

    bootstrap: str
    ca_pem: str
    registry_url: str | None


def _with_host(bootstrap: str, host: str) -> str:
    """Each ``host:port`` of a bootstrap list with another host (IPv6 in brackets)."""
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return ",".join(f"{host}:{address.rpartition(':')[2]}" for address in bootstrap.split(",") if address.strip())


def _registry_with_host(url: str, host: str) -> str:
    parts = urllib.parse.urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{host}{port}"))


def _embedded_state() -> Any:
    from streams.platform.broker import EmbeddedBroker
    from streams.platform.settings import ENV_CLIENTS_BOOTSTRAP, external_bootstrap

    if os.environ.get(ENV_CLIENTS_BOOTSTRAP, "").strip() or external_bootstrap():
        return None
    return EmbeddedBroker().state()


def clients_view(public_host: str, registry_url: str) -> ClientsView:
    """The public bootstrap address, the CA's PEM and the schema registry's URL for an issued config."""
    from streams.platform.broker import resolve_clients_listener
    from streams.platform.settings import registry_url as hub_registry_url

    bootstrap, ca_file = resolve_clients_listener()
    state = _embedded_state()
    if state is not None and public_host and public_host != (state.public_host or "127.0.0.1"):
        raise BosaiError(
            f"the embedded broker advertises its CLIENTS listener as {state.public_host or '127.0.0.1'}, not "
            f"{public_host}, and its certificate names only that: stop it and start it with "
            f"`bosai broker up --public-host {public_host}`"
        )
    url = registry_url or os.environ.get(ENV_CLIENTS_REGISTRY, "").strip() or hub_registry_url()
    if not url and state is not None:
        url = state.registry_url or None
    if public_host:
        bootstrap = _with_host(bootstrap, public_host)
        if url and not registry_url and not os.environ.get(ENV_CLIENTS_REGISTRY):
            url = _registry_with_host(url, public_host)
    if not url:
        say(
            f"note: no schema registry known (bosai broker up starts one; else --registry-url or "
            f"{ENV_CLIENTS_REGISTRY}): the config names none"
        )
    try:
        ca_pem = Path(ca_file).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise BosaiError(f"{ca_file}: cannot read the CA certificate clients must trust: {exc}") from exc
    if "-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise BosaiError(f"{ca_file}: not a PEM certificate (expected -----BEGIN CERTIFICATE-----)")
    return ClientsView(bootstrap, ca_pem, url or None)


def write_forms(
    config: dict[str, Any], principal: Principal, *, fmt: str, output: Path | None, output_dir: Path | None
) -> None:
    """One form to stdout or ``output``, or every form into ``output_dir`` (secrets 0600)."""
    from streams.platform.secret_files import write_secret
    from streams.security.client_config import render_client_properties, render_json, render_librdkafka

    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        ca = output_dir / f"{principal.name}.ca.pem"
        ca.write_text(config["kafka"]["ssl.ca.pem"], encoding="ascii")
        files = {
            "properties": render_client_properties(config),
            "json": render_json(config),
            "conf": render_librdkafka(config, ca.name),
        }
        for suffix, text in files.items():
            write_secret(output_dir / f"{principal.name}.{suffix}", text)
        say(
            f"credential for {principal.name} written to {output_dir}: {principal.name}.properties (Java), .json "
            f"(confluent-kafka), .conf + .ca.pem (kcat -F) (mode 0600)"
        )
        return
    if fmt == "librdkafka":
        ca_name = f"{output.stem}.ca.pem" if output else "ca.pem"
        text = render_librdkafka(config, ca_name)
        if output:
            (output.parent / ca_name).write_text(config["kafka"]["ssl.ca.pem"], encoding="ascii")
        else:
            say(f"save the CA certificate (in the json and properties forms) as {ca_name} beside this file")
    else:
        text = (render_json if fmt == "json" else render_client_properties)(config)
    if output:
        write_secret(output, text)
        say(f"credential for {principal.name} written to {output} (mode 0600)")
    else:
        click.echo(text, nl=False)
