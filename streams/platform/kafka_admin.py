"""Kafka administration through the hub's own listener: topics (the catalog), ACLs and SCRAM credentials.

Topics: ``observe`` reads what the cluster has, ``apply_plan`` carries out a catalog plan (create, add
partitions, set the catalog's configs). Access: the cluster's ACL bindings and SCRAM users compared with
the access file, and made equal to it; credentials issued, rotated and revoked. Every call goes through
an admin client from :mod:`streams.platform.kafka`; the operations commands call are patient through a
cluster outage (:mod:`streams.platform.kafka_retry`).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Iterable, Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from streams.kernel.access import AccessPlan, AccessPolicy, AclBinding, Principal
from streams.kernel.access import plan as plan_bindings
from streams.kernel.topics import ObservedTopic, Plan, TopicSpec, plan
from streams.platform import kafka_protocol as protocol
from streams.platform.kafka import started_admin
from streams.platform.kafka_retry import patient

# -- topics ---------------------------------------------------------------------------------------


async def observe(admin: AIOKafkaAdminClient, names: Sequence[str]) -> tuple[dict[str, ObservedTopic], int]:
    """Partitions, replication and the catalog-managed configs of the named topics that exist."""
    cluster = await admin.describe_cluster()
    broker_count = len(cluster.get("brokers", []))
    existing = set(await admin.list_topics())
    present = [n for n in names if n in existing]
    observed: dict[str, ObservedTopic] = {}
    if not present:
        return observed, broker_count
    described = await admin.describe_topics(present)
    shapes: dict[str, tuple[int, int]] = {}
    for topic in described:
        partitions = topic["partitions"]
        rf = max((len(p["replicas"]) for p in partitions), default=0)
        shapes[topic["topic"]] = (len(partitions), rf)
    configs: dict[str, dict[str, str]] = {n: {} for n in present}
    for chunk_start in range(0, len(present), 100):
        chunk = present[chunk_start : chunk_start + 100]
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in chunk])
        for response in responses:
            for resource in response.resources:
                error_code, error_message, _rtype, name, entries = resource[:5]
                if error_code:
                    raise RuntimeError(f"describe_configs {name}: error {error_code} {error_message}") from for_code(
                        error_code
                    )(error_message)
                configs[name] = {e[0]: e[1] for e in entries if e[1] is not None}
    for name in present:
        partitions, rf = shapes[name]
        observed[name] = ObservedTopic(name=name, partitions=partitions, replication_factor=rf, configs=configs[name])
    return observed, broker_count


CREATE_BUDGET = 2_000  # partitions (and configs) per CreateTopics request: KRaft refuses ~10,000 records at once


def _batches(topics: Sequence[NewTopic], budget: int = CREATE_BUDGET) -> list[list[NewTopic]]:
    """The topics in requests of at most ``budget`` partitions and configs each (a bigger topic alone)."""
    batches: list[list[NewTopic]] = [[]]
    used = 0
    for topic in topics:
        cost = topic.num_partitions * max(1, topic.replication_factor) + len(topic.topic_configs or {}) + 1
        if batches[-1] and used + cost > budget:
            batches.append([])
            used = 0
        batches[-1].append(topic)
        used += cost
    return [b for b in batches if b]


async def apply_plan(admin: AIOKafkaAdminClient, result: Plan) -> None:
    """Carry out a plan's changes: create, add partitions, set configs (catalog keys only)."""
    creates = result.creates
    if creates:
        new_topics = [NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.configs) for s in creates]
        for batch in _batches(new_topics):  # the controller refuses one request of too many records (45 packs)
            response = await admin.create_topics(batch)
            for item in response.topic_errors:
                name, code = item[0], item[1]
                message = item[2] if len(item) > 2 else ""
                if code and code != TopicAlreadyExistsError.errno:
                    raise RuntimeError(f"create topic {name}: Kafka error {code} {message}") from for_code(code)(
                        message
                    )
        await _wait_visible(admin, [s.name for s in creates])
    grow = {a.topic: NewPartitions(a.partitions) for a in result.changes if a.kind == "add_partitions"}
    if grow:
        await admin.create_partitions(grow)
    alters = [a for a in result.changes if a.kind == "alter_configs"]
    if alters:
        responses = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, a.topic, a.configs) for a in alters]
        )
        for response in responses:
            for resource in response.resources:
                if resource[0]:
                    raise RuntimeError(
                        f"alter configs {resource[3]}: Kafka error {resource[0]} {resource[1]}"
                    ) from for_code(resource[0])(resource[1])


async def _wait_visible(admin: AIOKafkaAdminClient, names: Sequence[str], timeout_s: float = 30.0) -> None:
    """Wait until created topics show in broker metadata (KRaft propagates them asynchronously)."""
    deadline = time.monotonic() + timeout_s
    missing = set(names)
    while missing:
        missing -= set(await admin.list_topics())
        if not missing:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"created topics not visible after {timeout_s:.0f}s: {sorted(missing)[:5]}")
        await asyncio.sleep(0.2)


# -- plan and apply against a cluster ------------------------------------------------------------


@patient("reading the topics")
async def plan_topics(bootstrap: str, specs: Sequence[TopicSpec]) -> Plan:
    """What `apply_topics` would change."""
    async with started_admin(bootstrap) as client:
        observed, broker_count = await observe(client, [s.name for s in specs])
        return plan(specs, observed, broker_count)


@patient("applying the topics")
async def apply_topics(bootstrap: str, specs: Sequence[TopicSpec], *, timeout_s: float = 15.0) -> tuple[Plan, Plan]:
    """Apply the catalog; return (plan before, plan after). Config changes reach the brokers through the
    KRaft metadata log, so the plan after is taken once they show (or the timeout passes)."""
    async with started_admin(bootstrap) as client:
        observed, broker_count = await observe(client, [s.name for s in specs])
        before = plan(specs, observed, broker_count)
        await apply_plan(client, before)
    deadline = time.monotonic() + timeout_s
    while True:
        after = await plan_topics(bootstrap, specs)
        if not after.changes or time.monotonic() > deadline:
            return before, after
        await asyncio.sleep(0.2)


# -- ACLs and SCRAM credentials ---------------------------------------------------------------------


async def describe_acls(admin: AIOKafkaAdminClient) -> set[AclBinding]:
    """Every ACL binding on the cluster."""
    response = await admin._send_request(protocol.DescribeAcls())
    protocol.raise_for(response.error_code, response.error_message, "DescribeAcls")
    return {
        protocol.acl_of(resource_type, resource_name, pattern_type, principal, host, operation, permission)
        for resource_type, resource_name, pattern_type, acls in response.resources
        for principal, host, operation, permission in acls
    }


async def create_acls(admin: AIOKafkaAdminClient, bindings: Iterable[AclBinding]) -> None:
    wanted = sorted(bindings)
    if not wanted:
        return
    response = await admin._send_request(protocol.CreateAcls([protocol.acl_wire(b) for b in wanted]))
    for binding, (error_code, message) in zip(wanted, response.creation_responses, strict=False):
        protocol.raise_for(error_code, message, f"CreateAcls {binding.describe()}")


async def delete_acls(admin: AIOKafkaAdminClient, bindings: Iterable[AclBinding]) -> None:
    doomed = sorted(bindings)
    if not doomed:
        return
    response = await admin._send_request(protocol.DeleteAcls([protocol.acl_wire(b) for b in doomed]))
    for binding, (error_code, message, _matching) in zip(doomed, response.filter_responses, strict=False):
        protocol.raise_for(error_code, message, f"DeleteAcls {binding.describe()}")


async def scram_users(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """Users with a SCRAM-SHA-512 credential, with its iteration count."""
    response = await admin._send_request(protocol.DescribeScram(None))
    protocol.raise_for(response.error_code, response.error_message, "DescribeUserScramCredentials")
    users: dict[str, int] = {}
    for user, error_code, _message, infos, _tags in response.results:
        if error_code:
            continue
        for mechanism, iterations, _t in infos:
            if mechanism == protocol.SCRAM_SHA_512:
                users[user] = iterations
    return users


def salted_password(password: str, salt: bytes, iterations: int = protocol.SCRAM_ITERATIONS) -> bytes:
    """RFC 5802 Hi(password, salt, i) for SCRAM-SHA-512 (what the broker stores, with the salt)."""
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)


async def upsert_scram(admin: AIOKafkaAdminClient, user: str, password: str) -> None:
    """Create or replace user's SCRAM-SHA-512 credential."""
    salt = secrets.token_bytes(32)
    upsertion: protocol.ScramUpsertion = (
        user,
        protocol.SCRAM_SHA_512,
        protocol.SCRAM_ITERATIONS,
        salt,
        salted_password(password, salt),
        {},
    )
    response = await admin._send_request(protocol.AlterScram([], [upsertion]))
    for result_user, error_code, message, _tags in response.results:
        protocol.raise_for(error_code, message, f"AlterUserScramCredentials (upsert {result_user})")


async def delete_scram(admin: AIOKafkaAdminClient, user: str) -> bool:
    """Remove user's SCRAM-SHA-512 credential; False when it had none."""
    response = await admin._send_request(protocol.AlterScram([(user, protocol.SCRAM_SHA_512, {})], []))
    for result_user, error_code, message, _tags in response.results:
        if error_code == 91:  # RESOURCE_NOT_FOUND: no such credential
            return False
        protocol.raise_for(error_code, message, f"AlterUserScramCredentials (delete {result_user})")
    return True


# -- access: the file against the cluster ---------------------------------------------------------------


@patient("reading ACLs and credentials")
async def plan_access(bootstrap: str, policy: AccessPolicy) -> AccessPlan:
    async with started_admin(bootstrap) as client:
        return plan_bindings(policy, await describe_acls(client), await scram_users(client))


@patient("applying ACLs")
async def apply_access(
    bootstrap: str, policy: AccessPolicy, *, timeout_s: float = 30.0
) -> tuple[AccessPlan, AccessPlan]:
    """Make the cluster's ACLs equal to the file; return (plan before, plan after)."""
    before = await plan_access(bootstrap, policy)
    async with started_admin(bootstrap) as client:
        await create_acls(client, before.add)
        await delete_acls(client, before.remove)
    # ACLs reach the brokers' authorizers through the KRaft metadata log: wait until they show.
    deadline = time.monotonic() + timeout_s
    while True:
        after = await plan_access(bootstrap, policy)
        if not after.changes or time.monotonic() > deadline:
            return before, after
        await asyncio.sleep(0.2)


async def issue_credential(bootstrap: str, principal: Principal) -> str:
    """Create or rotate the principal's SCRAM-SHA-512 credential; return the new password (shown once)."""
    password = secrets.token_urlsafe(24)
    await issue_credential_with(bootstrap, principal.name, password)
    return password


@patient("issuing a credential")
async def issue_credential_with(bootstrap: str, user: str, password: str) -> None:
    """Create or replace ``user``'s SCRAM-SHA-512 credential with this password."""
    async with started_admin(bootstrap) as client:
        await upsert_scram(client, user, password)


@patient("revoking a credential")
async def revoke_credential(bootstrap: str, name: str) -> bool:
    async with started_admin(bootstrap) as client:
        return await delete_scram(client, name)


@patient("deleting a replay's topics")
async def delete_namespace(bootstrap: str, prefix: str, regions: Sequence[str]) -> int:
    """Delete every topic of a replay namespace (catalog topics and the workers' internal topics)."""
    async with started_admin(bootstrap) as client:
        names = [
            t
            for t in await client.list_topics()
            if any(t.startswith(f"{prefix}.{r}.") or t.startswith(f"{prefix}-{r}-hub") for r in regions)
        ]
        for start in range(0, len(names), 200):  # a bounded request each (a national replay has thousands)
            await client.delete_topics(names[start : start + 200])
        return len(names)
