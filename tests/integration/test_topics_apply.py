"""The topic catalog against the real broker: apply creates everything, applying twice changes nothing."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.kernel.topics import RegionTopics, expand
from streams.packs.region_pack import load_pack
from streams.platform.kafka_admin import apply_topics, plan_topics
from streams.platform.topic_catalog import default_catalog_path, load_catalog


async def test_apply_creates_every_catalog_topic_and_a_second_apply_changes_nothing(kafka_bootstrap, unique):
    region = RegionTopics(f"t{unique}", "09", ("09201", "09202", "09206"))
    specs = expand(load_catalog(default_catalog_path()), [region])

    first_before, first_after = await apply_topics(kafka_bootstrap, specs)
    second_before, second_after = await apply_topics(kafka_bootstrap, specs)

    assert len(first_before.changes) == len(specs)
    assert first_after.changes == [] and second_before.changes == [] and second_after.changes == []
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
        described = {t["topic"]: t for t in await admin.describe_topics([s.name for s in specs])}
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs])
    finally:
        await admin.close()
    assert {s.name for s in specs} <= topics
    for spec in specs:
        assert len(described[spec.name]["partitions"]) == spec.partitions
    actual = {r[3]: {e[0]: e[1] for e in r[4]} for resp in responses for r in resp.resources}
    for spec in specs:
        assert actual[spec.name]["retention.ms"] == spec.configs["retention.ms"]
        assert actual[spec.name]["cleanup.policy"] == spec.configs["cleanup.policy"]


async def test_every_municipality_of_the_shipped_packs_gets_its_alerts_topic(kafka_bootstrap, project_root):
    packs = [load_pack(project_root / "regions" / n) for n in ("tochigi", "kanagawa")]
    specs = expand(load_catalog(default_catalog_path()), [p.topics_input() for p in packs])

    await apply_topics(kafka_bootstrap, specs)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
    finally:
        await admin.close()

    for pack in packs:
        for municipality in pack.municipalities:
            assert f"bosai.{pack.name}.alerts.{municipality.code}" in topics
    assert "bosai.kanagawa.alerts.14104" in topics  # Naka-ku, Yokohama
    assert (await plan_topics(kafka_bootstrap, specs)).changes == []


async def test_drift_on_the_cluster_is_planned_and_repaired(kafka_bootstrap, unique):
    region = RegionTopics(f"d{unique}", "09", ("09201",))
    specs = expand(load_catalog(default_catalog_path()), [region])
    await apply_topics(kafka_bootstrap, specs)
    raw = f"bosai.d{unique}.readings.raw"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, raw, {"retention.ms": "60000", "cleanup.policy": "delete"})]
        )
    finally:
        await admin.close()

    drift = await plan_topics(kafka_bootstrap, specs)
    for _ in range(50):  # the altered config reaches the broker through the KRaft metadata log
        if drift.changes:
            break
        await asyncio.sleep(0.2)
        drift = await plan_topics(kafka_bootstrap, specs)
    _, after = await apply_topics(kafka_bootstrap, specs)

    assert [(a.kind, a.topic) for a in drift.changes] == [("alter_configs", raw)]
    assert "retention.ms: 60000 -> 604800000" in drift.changes[0].detail
    assert after.changes == []
