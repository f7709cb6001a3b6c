"""Backup and restore of the hub: the catalog's topics (state changelogs included) with the consumer groups'
offsets, the region packs, the access and catalog files, credentials and, when given, the archive's folder.

``create`` takes a **consistent cut**: the groups' committed offsets are read, then every topic's last stable
offset, then the offsets again; when nothing committed in between (retried until so), the records before
those ends are exactly the outputs and state changes of the input the groups committed (the workers commit
all three in one transaction). Every committed record (``read_committed``) of every partition is written in
offset order — key, value, headers, timestamp — into ``topics/<topic>/<partition>.jsonl.gz``; files are
copied (secrets 0600, marked in the manifest, never printed); ``manifest.json`` is written last, so a folder
without one is not a backup.

``verify`` hashes every file again and reads every records file to its end (counts, offset order).

``restore`` verifies first, creates the topics as they were (partitions and configs; replication capped at
the cluster's size), refuses a target topic that already has records unless forced, writes each partition's
records back in order with an idempotent producer (no transactions: the restored offsets are contiguous from
the partition's end), then commits each group's offsets translated to the restored offsets
(:func:`streams.ops.backup_manifest.translate_offset`), and copies the files into a target folder.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import os
import shutil
import time
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from streams import __version__
from streams.kernel.errors import BosaiError, CheckFailed, ExitCode
from streams.kernel.topics import Plan, TopicSpec, plan
from streams.ops.backup_manifest import (
    MANIFEST,
    BackedUpRecord,
    BadLine,
    FileEntry,
    Findings,
    FoundFile,
    Manifest,
    PartitionBackup,
    TopicBackup,
    check_offsets,
    compare,
    parse_line,
    parse_manifest,
    record_line,
    translate_offset,
)
from streams.platform import kafka
from streams.platform.kafka_admin import apply_plan, observe
from streams.platform.secret_files import write_secret

log = logging.getLogger("bosai.backup")
Progress = Callable[[str], None]
GroupOffsets = dict[str, dict[kafka.TopicPartition, int]]

CUT_ATTEMPTS = 20  # reads of the groups' offsets around the topics' ends before the cut is taken as it is
BATCH = 5_000  # records fetched (and written back) at a time
STALL_S = 60.0  # a partition that does not move for this long while read or written: the command fails


class ClusterUnavailable(BosaiError):
    """The cluster could not be reached (exit 3)."""

    exit_code = ExitCode.CLUSTER_UNAVAILABLE


def _unavailable(bootstrap: str, exc: BaseException) -> ClusterUnavailable:
    text = str(exc) if str(exc).startswith(type(exc).__name__) else f"{type(exc).__name__}: {exc}"
    return ClusterUnavailable(f"the Kafka cluster at {bootstrap} could not be reached: {text}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Ticker:
    """Progress on stderr at most every ``every_s`` seconds."""

    def __init__(self, progress: Progress, every_s: float = 2.0):
        self.progress, self.every_s, self.last = progress, every_s, time.monotonic()

    def __call__(self, message: Callable[[], str]) -> None:
        if time.monotonic() - self.last >= self.every_s:
            self.last = time.monotonic()
            self.progress(message())


# -- what is backed up besides the topics ------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSource:
    """A file or folder to copy into the backup: where from, where in the backup, its kind, whether secret."""

    path: Path
    target: str  # the relative path in the backup (a folder's files go under it)
    kind: str
    secret: bool = False


def _files_of(source: FileSource) -> Iterator[tuple[Path, str]]:
    if source.path.is_dir():
        for path in sorted(p for p in source.path.rglob("*") if p.is_file()):
            yield path, f"{source.target}/{path.relative_to(source.path).as_posix()}"
    elif source.path.is_file():
        yield source.path, source.target
    else:
        raise BosaiError(f"{source.path}: no such file or folder (a {source.kind} to back up)")


def copy_files(out: Path, sources: Sequence[FileSource], progress: Progress) -> list[FileEntry]:
    """Copy each source into the backup: secrets through write_secret (0600), the rest as they are."""
    entries: list[FileEntry] = []
    for source in sources:
        copied = 0
        for path, relative in _files_of(source):
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if source.secret:
                write_secret(target, path.read_bytes())
            else:
                shutil.copyfile(path, target)
            entries.append(
                FileEntry(
                    path=relative,
                    sha256=_sha256(target),
                    size=target.stat().st_size,
                    kind=source.kind,
                    secret=source.secret,
                    source=str(path.resolve()),
                )
            )
            copied += 1
        progress(
            f"backup: {copied} file(s) of {source.path} ({source.kind}{', secret: 0600' if source.secret else ''})"
        )
    return entries


def hub_credential_file() -> Path | None:
    """The hub's client config: BOSAI_KAFKA_CONFIG, else the running hardened embedded broker's (else None)."""
    from streams.platform.broker import EmbeddedBroker
    from streams.platform.kafka_security import ENV_CONFIG
    from streams.platform.settings import external_bootstrap

    named = os.environ.get(ENV_CONFIG, "").strip()
    if named:
        return Path(named)
    state = None if external_bootstrap() else EmbeddedBroker().state()
    return Path(state.hub_config) if state is not None and state.hardened and state.hub_config else None


def default_sources(
    packs: Sequence[Path], *, secrets: Sequence[Path] = (), with_secrets: bool = True, archive: Path | None = None
) -> list[FileSource]:
    """What a backup copies besides the topics: the packs (every pack under regions/, templates included, unless
    ``packs`` names some), topics/access.yaml and topics/catalog.yaml; with secrets, the hub's client config, the
    gateway's token store, the local CA (``BOSAI_TLS_DIR``) and each of ``secrets``; the archive's folder when
    given."""
    from streams.platform.access_file import default_access_path
    from streams.platform.settings import project_root, tls_dir
    from streams.platform.topic_catalog import default_catalog_path
    from streams.security.token_store import default_tokens_path

    sources = (
        [FileSource(p, f"files/regions/{p.resolve().name}", "pack") for p in packs]
        if packs
        else [FileSource(project_root() / "regions", "files/regions", "pack")]
    )
    sources += [
        FileSource(path, f"files/topics/{path.name}", kind)
        for path, kind in ((default_access_path(), "access"), (default_catalog_path(), "catalog"))
        if path.is_file()
    ]
    if with_secrets:
        hub = hub_credential_file()
        if hub is not None and hub.is_file():
            sources.append(FileSource(hub, f"secrets/hub/{hub.name}", "credential", secret=True))
        tokens = default_tokens_path()  # the gateway's token store (hashes only, but who may send readings)
        if tokens.is_file():
            sources.append(FileSource(tokens, f"secrets/gateway/{tokens.name}", "credential", secret=True))
        for name in ("ca.pem", "ca.key"):  # the local CA: issued configs and node certificates chain to it
            if (tls_dir() / name).is_file():
                sources.append(FileSource(tls_dir() / name, f"secrets/tls/{name}", "credential", secret=True))
        names: set[str] = set()
        for path in secrets:
            name = path.resolve().name
            while name in names or name in ("hub", "tls", "gateway"):
                name = f"_{name}"
            names.add(name)
            sources.append(FileSource(path, f"secrets/{name}", "credential", secret=True))
    elif secrets:
        raise BosaiError("--secret and --no-secrets: give one or the other")
    if archive is not None:
        sources.append(FileSource(archive, "archive", "archive"))
    return sources


# -- the cut -------------------------------------------------------------------------------------------------


async def group_offsets(admin: Any, topics: set[str]) -> GroupOffsets:
    """Every consumer group's committed offsets on the topics (groups with none there are left out)."""
    found: GroupOffsets = {}
    for group in sorted({g[0] for g in await admin.list_consumer_groups()}):
        committed = await admin.list_consumer_group_offsets(group)
        offsets = {tp: meta.offset for tp, meta in committed.items() if tp.topic in topics and meta.offset >= 0}
        if offsets:
            found[group] = offsets
    return found


async def consistent_cut(
    bootstrap: str, admin: Any, partitions: Sequence[kafka.TopicPartition], progress: Progress
) -> tuple[dict[kafka.TopicPartition, int], GroupOffsets, bool]:
    """The topics' last stable offsets and the groups' offsets at one moment: (ends, groups, consistent)."""
    topics = {tp.topic for tp in partitions}
    ends: dict[kafka.TopicPartition, int] = {}
    after: GroupOffsets = {}
    async with kafka.started_consumer(bootstrap) as client:
        for attempt in range(1, CUT_ATTEMPTS + 1):
            before = await group_offsets(admin, topics)
            ends = await client.end_offsets(list(partitions))
            after = await group_offsets(admin, topics)
            if before == after:
                return ends, after, True
            if attempt == 1:
                progress("backup: the groups committed while the ends were read; reading them again …")
            await asyncio.sleep(0.05 * attempt)
    progress(
        f"backup: warning: the groups kept committing over {CUT_ATTEMPTS} attempts; the cut is taken as it is "
        "(the manifest says consistent: false)"
    )
    return ends, after, False


# -- create --------------------------------------------------------------------------------------------------


def _topic_file(topic: str, partition: int) -> str:
    return f"topics/{topic}/{partition}.jsonl.gz"


def _gzip_writer(path: Path) -> tuple[BinaryIO, gzip.GzipFile]:
    """The file and a gzip stream into it (no name or time in its header: the same records, the same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = path.open("wb")
    return handle, gzip.GzipFile(filename="", mode="wb", fileobj=handle, compresslevel=6, mtime=0)


async def _read_topic(
    client: Any,
    out: Path,
    topic: str,
    partitions: int,
    ends: Mapping[kafka.TopicPartition, int],
    tick: _Ticker,
    total: list[int],
) -> list[PartitionBackup]:
    """Every committed record of the topic's partitions before their ends, into one file per partition."""
    tps = [kafka.TopicPartition(topic, p) for p in range(partitions)]
    client.assign(tps)
    starts = await client.beginning_offsets(tps)
    counts = dict.fromkeys(tps, 0)
    opened = {tp: _gzip_writer(out / _topic_file(topic, tp.partition)) for tp in tps}
    writers = {tp: gz for tp, (_, gz) in opened.items()}
    try:
        remaining = {tp for tp in tps if ends[tp] > starts[tp]}
        for tp in remaining:
            client.seek(tp, starts[tp])
        moved = time.monotonic()
        while remaining:
            batch = await client.getmany(*remaining, timeout_ms=500, max_records=BATCH)
            for tp, items in batch.items():
                lines = [
                    record_line(
                        BackedUpRecord(m.offset, m.timestamp, m.key, m.value, tuple((k, v) for k, v in m.headers or ()))
                    )
                    for m in items
                    if m.offset < ends[tp]
                ]
                if lines:
                    writers[tp].write("".join(lines).encode("utf-8"))
                    counts[tp] += len(lines)
                    total[0] += len(lines)
                    moved = time.monotonic()
            for tp in list(remaining):
                if await client.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if remaining and time.monotonic() - moved > STALL_S:
                where = [f"[{tp.partition}] at {await client.position(tp)} of {ends[tp]}" for tp in sorted(remaining)]
                raise BosaiError(
                    f"{topic}: no record read for {STALL_S:.0f} s before the partitions' ends ({', '.join(where)})"
                )
            tick(lambda: f"backup: {total[0]:,} records so far ({topic})")
    finally:
        for handle, writer in opened.values():
            writer.close()
            handle.close()
    return [
        PartitionBackup(
            tp.partition, starts[tp], max(ends[tp], starts[tp]), counts[tp], _topic_file(topic, tp.partition)
        )
        for tp in tps
    ]


async def _backup_topics(
    bootstrap: str, specs: Sequence[TopicSpec], out: Path, progress: Progress
) -> tuple[list[TopicBackup], dict[str, dict[str, dict[int, int]]], bool, list[str]]:
    notes: list[str] = []
    try:
        admin_client = kafka.admin(bootstrap, request_timeout_ms=30_000)
        await admin_client.start()
    except (KafkaConnectionError, KafkaTimeoutError, OSError) as exc:
        raise _unavailable(bootstrap, exc) from None
    try:
        observed, _brokers = await observe(admin_client, [s.name for s in specs])
        present = [s for s in specs if s.name in observed]
        missing = [s.name for s in specs if s.name not in observed]
        if missing:
            notes.append(f"{len(missing)} catalog topic(s) not on the cluster, not backed up: {', '.join(missing)}")
            progress(
                f"backup: {len(missing)} catalog topic(s) are not on the cluster (not created yet): {missing[:3]}…"
            )
        if not present:
            raise BosaiError(
                f"none of the catalog's {len(specs)} topics is on the cluster at {bootstrap} "
                "(wrong --bootstrap or --topic-prefix?)"
            )
        partitions = [kafka.TopicPartition(s.name, p) for s in present for p in range(observed[s.name].partitions)]
        ends, groups, consistent = await consistent_cut(bootstrap, admin_client, partitions, progress)
    finally:
        await admin_client.close()
    progress(
        f"backup: cut taken ({'consistent' if consistent else 'NOT consistent'}): {len(present)} topics, "
        f"{len(partitions)} partitions, {len(groups)} consumer group(s)"
    )
    topics: list[TopicBackup] = []
    total = [0]
    tick = _Ticker(progress)
    async with kafka.started_consumer(bootstrap) as client:
        for spec in present:
            have = observed[spec.name]
            backed_up = await _read_topic(client, out, spec.name, have.partitions, ends, tick, total)
            # the catalog's keys as the cluster has them; replication and min ISR as the catalog wants them (a
            # restore caps them at the target's size, as `bosai topics apply` does)
            configs = {k: have.configs.get(k, v) for k, v in spec.configs.items()}
            if "min.insync.replicas" in spec.configs:
                configs["min.insync.replicas"] = spec.configs["min.insync.replicas"]
            topics.append(
                TopicBackup(
                    name=spec.name,
                    catalog_id=spec.catalog_id,
                    region=spec.region,
                    partitions=have.partitions,
                    replication_factor=max(spec.replication_factor, have.replication_factor),
                    configs=configs,
                    key_schema=spec.key_schema,
                    value_schema=spec.value_schema,
                    framing=spec.framing,
                    municipality_code=spec.municipality_code,
                    backed_up=tuple(backed_up),
                )
            )
    as_json = {
        group: {
            topic: {tp.partition: o for tp, o in offsets.items() if tp.topic == topic}
            for topic in sorted({tp.topic for tp in offsets})
        }
        for group, offsets in groups.items()
    }
    return topics, as_json, consistent, notes


def _prepare_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BosaiError(f"{out} exists and is not an empty folder: a backup is never written over another")
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)


def _remove_partial(out: Path, *, keep_folder: bool) -> None:
    """Remove what a failed create wrote; an empty folder given to it (a mount point, say) stays."""
    if not keep_folder:
        shutil.rmtree(out, ignore_errors=True)
        return
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def create_backup(
    bootstrap: str,
    specs: Sequence[TopicSpec],
    out: Path,
    files: Sequence[FileSource],
    *,
    prefix: str,
    regions: Sequence[str],
    progress: Progress,
) -> Manifest:
    """Back up the topics (with the groups' offsets) and the files into ``out``; the manifest written last."""
    existed = out.exists()
    _prepare_out(out)
    started = time.monotonic()
    try:
        try:
            topics, groups, consistent, notes = asyncio.run(_backup_topics(bootstrap, specs, out, progress))
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            raise _unavailable(bootstrap, exc) from None
        entries = [
            FileEntry(p.file, _sha256(out / p.file), (out / p.file).stat().st_size, "topic")
            for t in topics
            for p in t.backed_up
        ]
        entries += copy_files(out, files, progress)
        manifest = Manifest(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            bosai_version=__version__,
            prefix=prefix,
            regions=tuple(regions),
            consistent=consistent,
            topics=tuple(topics),
            groups=groups,
            files=tuple(entries),
            notes=tuple(notes),
        )
        temporary = out / f".{MANIFEST}.tmp"
        temporary.write_text(manifest.to_json(), encoding="utf-8")
        os.replace(temporary, out / MANIFEST)
    except BaseException:
        _remove_partial(out, keep_folder=existed)  # never a half backup left behind
        raise
    size = sum(e.size for e in entries)
    progress(
        f"backup: {manifest.records:,} records of {len(topics)} topics, {len(groups)} group(s), "
        f"{len(entries)} files ({size / 1e6:.1f} MB) in {time.monotonic() - started:.1f} s → {out}"
    )
    return manifest


# -- verify --------------------------------------------------------------------------------------------------


def load_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BosaiError(f"{folder}: no such folder (a backup made by bosai backup create)")
    if not path.is_file():
        raise CheckFailed(f"{path}: missing — {folder} is not a finished backup")
    return parse_manifest(path.read_text(encoding="utf-8"), str(path))


def read_records(path: Path) -> Iterator[BackedUpRecord]:
    """The records of one partition's file, in the file's order."""
    with gzip.open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                yield parse_line(line)
            except BadLine as exc:
                raise BadLine(f"line {number}: {exc}") from None


def _found(folder: Path, entry: FileEntry, part: PartitionBackup | None) -> FoundFile | None:
    path = folder / entry.path
    if not path.is_file():
        return None
    found = FoundFile(sha256=_sha256(path), size=path.stat().st_size)
    if part is None:
        return found
    offsets: list[int] = []
    try:
        offsets = [r.offset for r in read_records(path)]
    except (OSError, EOFError, BadLine) as exc:
        return FoundFile(found.sha256, found.size, None, f"unreadable: {exc}")
    return FoundFile(found.sha256, found.size, len(offsets), check_offsets(offsets, part))


def verify_backup(folder: Path) -> tuple[Manifest, Findings]:
    """Every file against the manifest (sha256, size), every records file read to its end."""
    manifest = load_manifest(folder)
    parts = {p.file: p for t in manifest.topics for p in t.backed_up}
    found = {e.path: _found(folder, e, parts.get(e.path)) for e in manifest.files}
    listed = {e.path for e in manifest.files} | {MANIFEST}
    extra = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    return manifest, compare(manifest, found, [p for p in extra if p not in listed])


# -- restore -------------------------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    topics: int = 0
    created: int = 0
    records: int = 0
    groups: int = 0
    files: int = 0
    seconds: float = 0.0
    offsets: dict[str, dict[kafka.TopicPartition, int]] = field(default_factory=dict)  # group -> restored offsets


def _spec(topic: TopicBackup) -> TopicSpec:
    return TopicSpec(
        name=topic.name,
        catalog_id=topic.catalog_id,
        region=topic.region,
        partitions=topic.partitions,
        replication_factor=topic.replication_factor,
        configs=dict(topic.configs),
        key_schema=topic.key_schema,
        value_schema=topic.value_schema,
        municipality_code=topic.municipality_code,
        framing=topic.framing,
    )


async def _wait_leaders(admin: Any, names: Sequence[str], timeout_s: float = 30.0) -> None:
    """Until every partition of the created topics has a leader (the first writes then need no retry)."""
    deadline = time.monotonic() + timeout_s
    while names:
        described = await admin.describe_topics(list(names))
        if all(p.get("leader", -1) >= 0 for t in described for p in t.get("partitions", [])) and all(
            t.get("partitions") for t in described
        ):
            return
        if time.monotonic() > deadline:
            raise BosaiError(f"the created topics have no leader after {timeout_s:.0f} s (is the cluster healthy?)")
        await asyncio.sleep(0.2)


async def _prepare_topics(
    bootstrap: str, manifest: Manifest, force: bool, progress: Progress
) -> tuple[int, dict[kafka.TopicPartition, int]]:
    """Create the missing topics; refuse (unless forced) one with records. (created, each partition's end)."""
    specs = [_spec(t) for t in manifest.topics]
    try:
        admin_client = kafka.admin(bootstrap, request_timeout_ms=30_000)
        await admin_client.start()
    except (KafkaConnectionError, KafkaTimeoutError, OSError) as exc:
        raise _unavailable(bootstrap, exc) from None
    try:
        observed, brokers = await observe(admin_client, [s.name for s in specs])
        for topic in manifest.topics:
            have = observed.get(topic.name)
            if have is not None and have.partitions < topic.partitions:
                raise BosaiError(
                    f"{topic.name} exists on the target with {have.partitions} partition(s), the backup has "
                    f"{topic.partitions}: records could not go back to their partitions (delete the topic first)"
                )
        existing = [t.name for t in manifest.topics if t.name in observed]
        ends = await kafka.end_offsets(bootstrap, existing) if existing else {}
        full = sorted({tp.topic for tp, end in ends.items() if end > 0})
        if full and not force:
            raise BosaiError(
                f"{len(full)} target topic(s) already hold records ({', '.join(full[:3])}"
                f"{' …' if len(full) > 3 else ''}): restore onto an empty cluster, or give --force to append the "
                "backup after what is there"
            )
        if full:
            progress(f"restore: --force: appending after the records {len(full)} topic(s) already hold")
        wanted: Plan = plan(specs, observed, brokers)
        creates = [a for a in wanted.actions if a.kind == "create"]
        await apply_plan(admin_client, Plan(actions=tuple(creates), topics=wanted.topics))
        await _wait_leaders(admin_client, [a.topic for a in creates])
        if creates:
            progress(
                f"restore: created {len(creates)} topic(s) (replication "
                f"{min(max(brokers, 1), max((t.replication_factor for t in manifest.topics), default=1))})"
            )
    finally:
        await admin_client.close()
    return len(creates), {
        kafka.TopicPartition(t.name, p): ends.get(kafka.TopicPartition(t.name, p), 0)
        for t in manifest.topics
        for p in range(t.partitions)
    }


async def _write_partition(
    producer: Any, path: Path, tp: kafka.TopicPartition, tick: _Ticker, total: list[int]
) -> array[int]:
    """Write the file's records to one partition in order; the old offsets, in order."""
    old = array("q")
    pending: list[asyncio.Future[Any]] = []
    batch = producer.create_batch()
    for record in read_records(path):
        if record.key is None and record.value is None:
            raise BosaiError(f"{path}: offset {record.offset} has neither key nor value (Kafka refuses such a record)")
        headers = [(k, v) for k, v in record.headers]
        while batch.append(key=record.key, value=record.value, timestamp=record.timestamp, headers=headers) is None:
            pending.append(await producer.send_batch(batch, tp.topic, partition=tp.partition))
            batch = producer.create_batch()
        old.append(record.offset)
        if len(pending) >= 16:
            await asyncio.gather(*pending)
            pending.clear()
        tick(lambda: f"restore: {total[0] + len(old):,} records written ({tp.topic}[{tp.partition}])")
    if batch.record_count():
        pending.append(await producer.send_batch(batch, tp.topic, partition=tp.partition))
    await asyncio.gather(*pending)
    total[0] += len(old)
    return old


# aiokafka's loggers that warn of what it retries by itself on a brand-new cluster: a partition whose leader is not
# ready for a moment after it was created, the group coordinator not loaded yet. A failure still raises.
_RETRYING_LOGGERS = ("aiokafka.producer.sender", "aiokafka.consumer.group_coordinator")


@contextmanager
def _quiet_retries() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _RETRYING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() > logging.INFO:  # --log-level info/debug shows them
            logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


async def _restore_topics(
    bootstrap: str, folder: Path, manifest: Manifest, force: bool, progress: Progress
) -> RestoreResult:
    with _quiet_retries():
        return await _restore_quietly(bootstrap, folder, manifest, force, progress)


async def _restore_quietly(
    bootstrap: str, folder: Path, manifest: Manifest, force: bool, progress: Progress
) -> RestoreResult:
    result = RestoreResult(topics=len(manifest.topics))
    result.created, bases = await _prepare_topics(bootstrap, manifest, force, progress)
    old_offsets: dict[kafka.TopicPartition, array[int]] = {}
    total = [0]
    tick = _Ticker(progress)
    async with kafka.started_producer(bootstrap, linger_ms=0) as producer:
        for topic in manifest.topics:
            for part in topic.backed_up:
                tp = kafka.TopicPartition(topic.name, part.partition)
                old_offsets[tp] = await _write_partition(producer, folder / part.file, tp, tick, total)
    result.records = total[0]
    ends = await kafka.end_offsets(bootstrap, [t.name for t in manifest.topics])
    wrong = [
        f"{tp.topic}[{tp.partition}]: end {ends.get(tp)} after writing {len(old)} from {bases[tp]}"
        for tp, old in old_offsets.items()
        if ends.get(tp) != bases[tp] + len(old)
    ]
    if wrong:
        raise BosaiError(
            "the restored partitions do not end where they should (did something else write to them?): "
            + "; ".join(wrong[:5])
        )
    for group, topics in sorted(manifest.groups.items()):
        offsets = {
            tp: translate_offset(old_offsets[tp], committed, bases[tp])
            for topic, parts in topics.items()
            for partition, committed in parts.items()
            if (tp := kafka.TopicPartition(topic, partition)) in old_offsets
        }
        if not offsets:
            continue
        async with kafka.started_consumer(bootstrap, group_id=group) as client:
            client.assign(list(offsets))
            try:
                await client.commit(offsets)
            except KafkaError as exc:
                raise BosaiError(
                    f"consumer group {group}: its offsets could not be set ({type(exc).__name__}: {exc}); "
                    "is a process of the group already running on the target? Stop it and restore again"
                ) from None
        result.offsets[group] = offsets
    result.groups = len(result.offsets)
    return result


def restore_files(folder: Path, manifest: Manifest, target: Path, *, force: bool, progress: Progress) -> int:
    """Copy the backed-up files (packs, access, catalog, credentials, archive) under ``target``: ``files/x`` to
    ``target/x``, ``secrets/x`` to ``target/secrets/x`` (0600), ``archive/x`` to ``target/archive/x``."""
    entries = [e for e in manifest.files if e.kind != "topic"]
    destinations = {e.path: target / e.path.removeprefix("files/") for e in entries}
    taken = [str(d) for d in destinations.values() if d.exists()]
    if taken and not force:
        raise BosaiError(
            f"{len(taken)} file(s) already exist under {target} ({taken[0]} …): choose an empty folder or give --force"
        )
    for entry in entries:
        source, destination = folder / entry.path, destinations[entry.path]
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if entry.secret:
            write_secret(destination, source.read_bytes())
        else:
            shutil.copyfile(source, destination)
    secrets = sum(1 for e in entries if e.secret)
    progress(f"restore: {len(entries)} file(s) under {target} ({secrets} secret, mode 0600)")
    return len(entries)


def restore_backup(
    folder: Path, bootstrap: str, *, force: bool = False, files_to: Path | None = None, progress: Progress
) -> RestoreResult:
    """Verify the backup, then restore its topics and groups onto ``bootstrap`` and its files under ``files_to``."""
    started = time.monotonic()
    manifest, findings = verify_backup(folder)
    if not findings.ok:
        raise CheckFailed(
            f"{folder} does not match its manifest ({len(findings.problems)} problem(s)); nothing restored:\n"
            + "\n".join(findings.problems[:20])
        )
    if not manifest.consistent:
        progress("restore: warning: the backup's cut was not consistent (the manifest says why)")
    try:
        result = asyncio.run(_restore_topics(bootstrap, folder, manifest, force, progress))
    except (KafkaConnectionError, KafkaTimeoutError) as exc:
        raise _unavailable(bootstrap, exc) from None
    if files_to is not None:
        result.files = restore_files(folder, manifest, files_to, force=force, progress=progress)
    result.seconds = time.monotonic() - started
    progress(
        f"restore: {result.records:,} records into {result.topics} topics ({result.created} created), "
        f"{result.groups} group(s) positioned, {result.files} file(s), in {result.seconds:.1f} s"
    )
    return result
