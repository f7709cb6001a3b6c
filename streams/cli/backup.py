"""`bosai backup`: the hub backed up to a folder (topics, consumer groups' offsets, packs, access, credentials),
checked against its manifest, and restored onto an empty cluster (docs/operations/backup.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from streams.cli.common import catalog, load_packs, region_option, say, topic_prefix_option
from streams.kernel.errors import CheckFailed
from streams.kernel.topics import expand

bootstrap_option = click.option(
    "--bootstrap",
    default=None,
    help="The cluster's address (default: KAFKA_BOOTSTRAP_SERVERS, else the running embedded broker's admin "
    "listener). Its client settings come from BOSAI_KAFKA_CONFIG / BOSAI_KAFKA_* as for every command.",
)


def _bootstrap(given: str | None) -> str:
    from streams.platform.broker import resolve_admin_bootstrap

    return given.strip() if given and given.strip() else resolve_admin_bootstrap()


@click.group()
def backup() -> None:
    """Back up the hub to a folder, verify a backup, restore one onto an empty cluster."""


@backup.command("create")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The backup folder (new or empty; made 0700).",
)
@region_option
@topic_prefix_option
@bootstrap_option
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="A credential file or folder to keep too, e.g. issued client configs (repeatable; copied 0600).",
)
@click.option(
    "--no-secrets",
    is_flag=True,
    help="Leave out every credential (the hub's client config, the local CA, --secret): for a store that must "
    "not hold them.",
)
@click.option(
    "--archive",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="The archive's folder to copy as it is (take it while the archiver is stopped, or from a snapshot).",
)
def backup_create(
    out: Path,
    regions: tuple[Path, ...],
    topic_prefix: str | None,
    bootstrap: str | None,
    secrets: tuple[Path, ...],
    no_secrets: bool,
    archive: Path | None,
) -> None:
    """Back up the catalog's topics of the regions (every committed record, state changelogs included), the
    consumer groups' offsets at the same cut, the packs, topics/access.yaml, the catalog and the credentials."""
    from streams.ops.backup import create_backup, default_sources

    packs = load_packs(regions)
    topics_catalog = catalog(topic_prefix)
    specs = expand(topics_catalog, [p.topics_input() for p in packs])
    sources = default_sources(list(regions), secrets=list(secrets), with_secrets=not no_secrets, archive=archive)
    manifest = create_backup(
        _bootstrap(bootstrap),
        specs,
        out,
        sources,
        prefix=topics_catalog.prefix,
        regions=[p.name for p in packs],
        progress=say,
    )
    secret_count = sum(1 for f in manifest.files if f.secret)
    click.echo(
        f"{out}: {manifest.records} records of {len(manifest.topics)} topics, {len(manifest.groups)} consumer "
        f"group(s), {len(manifest.files)} files ({secret_count} secret); cut "
        f"{'consistent' if manifest.consistent else 'NOT consistent'}"
    )


@backup.command("verify")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON to stdout.")
def backup_verify(folder: Path, as_json: bool) -> None:
    """Hash every file of a backup again and read every records file: exit 0 when all match the manifest, 1
    naming each file that does not (missing, size, sha256, record count, not in the manifest)."""
    from streams.ops.backup import verify_backup

    manifest, findings = verify_backup(folder)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": findings.ok,
                    "files": findings.checked,
                    "records": findings.records,
                    "created_at": manifest.created_at,
                    "problems": findings.problems,
                },
                indent=2,
            )
        )
    else:
        for problem in findings.problems:
            click.echo(problem)
    if not findings.ok:
        raise CheckFailed(f"{folder}: {len(findings.problems)} problem(s) against its manifest")
    if not as_json:
        click.echo(
            f"{folder}: {findings.checked} files and {findings.records} records match the manifest "
            f"(made {manifest.created_at} by bosai {manifest.bosai_version})"
        )


@backup.command("restore")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@bootstrap_option
@click.option(
    "--files-to",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Restore the packs, access and catalog files, credentials (0600) and archive under this folder "
    "(regions/, topics/, secrets/, archive/). Default: the topics only.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Append to target topics that already hold records, and write over existing files under --files-to.",
)
def backup_restore(folder: Path, bootstrap: str | None, files_to: Path | None, force: bool) -> None:
    """Verify a backup, then restore it onto an empty cluster: the topics as they were (partitions, configs),
    every record back in order (keys, values, headers, timestamps), the consumer groups at their offsets."""
    from streams.ops.backup import load_manifest, restore_backup

    load_manifest(folder)  # a folder that is not a backup is said before any cluster is looked for
    result = restore_backup(folder, _bootstrap(bootstrap), force=force, files_to=files_to, progress=say)
    click.echo(
        f"restored {result.records} records into {result.topics} topics ({result.created} created), "
        f"{result.groups} consumer group(s) positioned, {result.files} file(s), in {result.seconds:.1f} s"
    )
