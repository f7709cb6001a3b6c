"""`bosai probe` and `bosai k8s`: running the hub in production — health probes, Kubernetes manifests."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import click

from streams.cli import common
from streams.kernel.errors import CheckFailed


@click.command()
@click.option(
    "--port",
    default=9464,
    show_default=True,
    type=int,
    envvar="BOSAI_METRICS_PORT",
    help="The process's metrics port [env BOSAI_METRICS_PORT].",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the process listens.")
@click.option("--ready", is_flag=True, help="Ask /readyz (readiness) instead of /healthz (liveness).")
@click.option("--timeout", "timeout_s", default=3.0, show_default=True, help="Seconds to wait for the answer.")
def probe(port: int, host: str, ready: bool, timeout_s: float) -> None:
    """Exit 0 when a long-running bosai process answers healthy (the image's HEALTHCHECK, compose healthchecks).

    Every long-running command serves /metrics, /healthz and /readyz on its --metrics-port; this asks one of
    them and prints the answer (which check is failing)."""
    url = f"http://{host}:{port}/{'readyz' if ready else 'healthz'}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            click.echo(answer.read().decode(errors="replace").strip())
            return
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace").strip()
        raise CheckFailed(f"{url}: {exc.code} {body}") from None
    except (OSError, ValueError) as exc:
        raise CheckFailed(f"{url}: no answer ({exc})") from None


def _write_or_check(files: dict[str, str], folder: Path, check: bool, what: str, command: str) -> None:
    """Write generated files under folder, or (check) exit 1 naming those that differ."""
    stale = sorted(n for n, text in files.items() if not (folder / n).is_file() or (folder / n).read_text() != text)
    if check:
        if stale:
            raise CheckFailed(f"out of date in {folder}: {', '.join(stale)} (run `{command}`)")
        click.echo(f"{len(files)} {what} up to date")
        return
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    click.echo(f"wrote {len(files)} {what} to {folder} ({len(stale)} changed)")


@click.group()
def k8s() -> None:
    """Kubernetes manifests (Kustomize, on a Kafka run by the Strimzi operator) under deploy/k8s/."""


@k8s.command("generate")
@common.region_option
@click.option("--check", is_flag=True, help="Exit 1 if deploy/k8s/base differs from what is generated.")
def k8s_generate(regions: tuple[Path, ...], check: bool) -> None:
    """Generate deploy/k8s/base from topics/catalog.yaml, topics/access.yaml and the region packs."""
    from streams.ops.k8s import base_dir, render
    from streams.platform.access_file import default_access_path, load_access

    packs = common.load_packs(regions)
    files = render(packs, common.catalog(), load_access(default_access_path()))
    _write_or_check(files, base_dir(), check, "manifests", "bosai k8s generate")
